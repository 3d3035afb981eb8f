import type { HeartbeatStat } from './protocol.js';

/** Request statistics of one mesh version in one cluster: totals since the operator started (monotonic). */
export interface VersionStats {
  meshVersion: string;
  /** Connected proxies whose last heartbeat reported this version. */
  proxies: number;
  requests: number;
  errors5xx: number;
  /** Sorted bucket upper bounds (ms); the last count (index = latencyBucketsMs.length) is +Inf. */
  latencyBucketsMs: number[];
  /** Non-cumulative counts, latencyBucketsMs.length + 1 entries. */
  latencyCounts: number[];
  sumMs: number;
}

interface Totals {
  requests: number;
  errors5xx: number;
  sumMs: number;
  /** bucket bound (Infinity for +Inf) → count */
  buckets: Map<number, number>;
}

function bucketMap(stat: HeartbeatStat): Map<number, number> {
  const map = new Map<number, number>();
  stat.latencyBucketsMs.forEach((bound, i) => map.set(bound, (map.get(bound) ?? 0) + (stat.latencyCounts[i] ?? 0)));
  const overflow = stat.latencyCounts[stat.latencyBucketsMs.length];
  if (overflow !== undefined) map.set(Infinity, (map.get(Infinity) ?? 0) + overflow);
  return map;
}

function isStat(value: unknown): value is HeartbeatStat {
  const s = value as HeartbeatStat;
  return (
    typeof s === 'object' && s !== null && typeof s.meshVersion === 'string' &&
    Number.isFinite(s.requests) && Number.isFinite(s.errors5xx) && Number.isFinite(s.sumMs) &&
    Array.isArray(s.latencyBucketsMs) && Array.isArray(s.latencyCounts)
  );
}

/**
 * Turns per-proxy cumulative heartbeat counters into per-(cluster, mesh version) totals that only
 * grow: each heartbeat adds its increase over the proxy's previous one; a counter that went down
 * means the proxy restarted, and the new value counts whole. The first heartbeat of a connection
 * (a proxy new to this operator, or back after a disconnect or an operator restart) is a baseline
 * only: its counters hold the proxy's whole history, which must not land in the analysis window
 * that happens to be open when it reconnects.
 */
export class VersionStatsAggregator {
  private readonly previous = new Map<string, Map<string, HeartbeatStat>>();
  private readonly totals = new Map<string, Map<string, Totals>>();

  record(proxyId: string, cluster: string, stats: unknown[]): void {
    const baselineOnly = !this.previous.has(proxyId);
    const prevByVersion = this.previous.get(proxyId) ?? new Map<string, HeartbeatStat>();
    const next = new Map<string, HeartbeatStat>();
    for (const raw of stats) {
      if (!isStat(raw)) continue;
      next.set(raw.meshVersion, raw);
      if (baselineOnly) continue;
      const prev = prevByVersion.get(raw.meshVersion);
      const reset = prev !== undefined && (raw.requests < prev.requests || raw.errors5xx < prev.errors5xx || raw.sumMs < prev.sumMs);
      const base = prev === undefined || reset ? undefined : prev;
      const total = this.totalsFor(cluster, raw.meshVersion);
      total.requests += raw.requests - (base?.requests ?? 0);
      total.errors5xx += raw.errors5xx - (base?.errors5xx ?? 0);
      total.sumMs += raw.sumMs - (base?.sumMs ?? 0);
      const now = bucketMap(raw);
      const before = base === undefined ? new Map<number, number>() : bucketMap(base);
      for (const [bound, count] of now) {
        const delta = count - (before.get(bound) ?? 0);
        total.buckets.set(bound, (total.buckets.get(bound) ?? 0) + Math.max(0, delta));
      }
    }
    this.previous.set(proxyId, next);
  }

  /** The proxy's counters restart from zero next time (it disconnected). */
  forget(proxyId: string): void {
    this.previous.delete(proxyId);
  }

  stats(cluster: string, proxiesPerVersion: ReadonlyMap<string, number>): VersionStats[] {
    const byVersion = this.totals.get(cluster) ?? new Map<string, Totals>();
    const versions = new Set([...byVersion.keys(), ...proxiesPerVersion.keys()]);
    return [...versions].sort().map((meshVersion) => {
      const t = byVersion.get(meshVersion) ?? { requests: 0, errors5xx: 0, sumMs: 0, buckets: new Map() };
      const bounds = [...t.buckets.keys()].filter((b) => b !== Infinity).sort((a, b) => a - b);
      return {
        meshVersion,
        proxies: proxiesPerVersion.get(meshVersion) ?? 0,
        requests: t.requests,
        errors5xx: t.errors5xx,
        sumMs: t.sumMs,
        latencyBucketsMs: bounds,
        latencyCounts: [...bounds.map((b) => t.buckets.get(b) ?? 0), t.buckets.get(Infinity) ?? 0],
      };
    });
  }

  private totalsFor(cluster: string, meshVersion: string): Totals {
    let byVersion = this.totals.get(cluster);
    if (!byVersion) this.totals.set(cluster, (byVersion = new Map()));
    let total = byVersion.get(meshVersion);
    if (!total) byVersion.set(meshVersion, (total = { requests: 0, errors5xx: 0, sumMs: 0, buckets: new Map() }));
    return total;
  }
}

/** Statistics accumulated between two readings of versionStats (later − earlier), per mesh version. */
export function diffVersionStats(later: VersionStats[], earlier: VersionStats[]): VersionStats[] {
  const before = new Map(earlier.map((s) => [s.meshVersion, s]));
  return later.map((now) => {
    const prev = before.get(now.meshVersion);
    if (!prev) return now;
    const prevCounts = new Map<number, number>();
    prev.latencyBucketsMs.forEach((b, i) => prevCounts.set(b, prev.latencyCounts[i] ?? 0));
    prevCounts.set(Infinity, prev.latencyCounts[prev.latencyBucketsMs.length] ?? 0);
    return {
      ...now,
      requests: now.requests - prev.requests,
      errors5xx: now.errors5xx - prev.errors5xx,
      sumMs: now.sumMs - prev.sumMs,
      latencyCounts: now.latencyCounts.map((c, i) => c - (prevCounts.get(now.latencyBucketsMs[i] ?? Infinity) ?? 0)),
    };
  });
}

/** Latency quantile (e.g. 0.99) from histogram buckets: the upper bound of the bucket holding it; NaN without data. */
export function latencyQuantileMs(stats: Pick<VersionStats, 'latencyBucketsMs' | 'latencyCounts'>, quantile: number): number {
  const total = stats.latencyCounts.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = quantile * total;
  let seen = 0;
  for (let i = 0; i < stats.latencyCounts.length; i++) {
    seen += stats.latencyCounts[i];
    if (seen >= rank) return stats.latencyBucketsMs[i] ?? Infinity;
  }
  return Infinity;
}
