/**
 * Request statistics of one mesh version, summed over a cluster's proxies. Proxies report
 * cumulative counters in their heartbeats; an analysis window is the difference of two readings.
 */
export interface VersionCounters {
  requests: number;
  errors5xx: number;
  /** Upper bounds (ms) of the latency histogram buckets, ascending; the implicit last bucket is +Inf. */
  latencyBucketsMs: number[];
  /** Per-bucket (not cumulative) counts, one longer than latencyBucketsMs (the +Inf bucket). */
  latencyCounts: number[];
  sumMs: number;
}

export type StatsByVersion = Record<string, VersionCounters>;

export function emptyCounters(bucketsMs: number[] = []): VersionCounters {
  return { requests: 0, errors5xx: 0, latencyBucketsMs: [...bucketsMs], latencyCounts: new Array(bucketsMs.length + 1).fill(0), sumMs: 0 };
}

/** Adds b into a (same bucket layout, or a takes b's layout when a is empty). Returns a new object. */
export function addCounters(a: VersionCounters, b: VersionCounters): VersionCounters {
  if (a.latencyCounts.length === 0 || a.requests === 0 && a.latencyBucketsMs.length === 0) {
    a = emptyCounters(b.latencyBucketsMs);
  }
  const counts = a.latencyCounts.slice();
  for (let i = 0; i < counts.length && i < b.latencyCounts.length; i++) counts[i] += b.latencyCounts[i];
  return { requests: a.requests + b.requests, errors5xx: a.errors5xx + b.errors5xx, latencyBucketsMs: a.latencyBucketsMs, latencyCounts: counts, sumMs: a.sumMs + b.sumMs };
}

/**
 * now − before, clamped at zero per field: a proxy that restarted resets its counters, and a
 * negative window would hide failures rather than show them.
 */
export function windowBetween(before: VersionCounters | undefined, now: VersionCounters | undefined): VersionCounters {
  if (!now) return emptyCounters(before?.latencyBucketsMs ?? []);
  if (!before) return now;
  const counts = now.latencyCounts.map((c, i) => Math.max(0, c - (before.latencyCounts[i] ?? 0)));
  return {
    requests: Math.max(0, now.requests - before.requests),
    errors5xx: Math.max(0, now.errors5xx - before.errors5xx),
    latencyBucketsMs: now.latencyBucketsMs,
    latencyCounts: counts,
    sumMs: Math.max(0, now.sumMs - before.sumMs),
  };
}

/** Percent of requests that were not 5xx; undefined without requests. */
export function successRate(c: VersionCounters): number | undefined {
  return c.requests === 0 ? undefined : (100 * (c.requests - c.errors5xx)) / c.requests;
}

/**
 * Quantile from the histogram with linear interpolation inside the bucket, as Prometheus'
 * histogram_quantile does; a quantile in the +Inf bucket reports the highest finite bound.
 */
export function latencyQuantile(c: VersionCounters, q: number): number | undefined {
  const total = c.latencyCounts.reduce((s, n) => s + n, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < c.latencyCounts.length; i++) {
    const inBucket = c.latencyCounts[i];
    if (seen + inBucket >= rank && inBucket > 0) {
      if (i >= c.latencyBucketsMs.length) return c.latencyBucketsMs[c.latencyBucketsMs.length - 1] ?? 0;
      const lower = i === 0 ? 0 : c.latencyBucketsMs[i - 1];
      const upper = c.latencyBucketsMs[i];
      return lower + (upper - lower) * ((rank - seen) / inBucket);
    }
    seen += inBucket;
  }
  return c.latencyBucketsMs[c.latencyBucketsMs.length - 1];
}
