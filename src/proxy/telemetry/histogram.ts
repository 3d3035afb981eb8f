/**
 * Fixed-bucket histograms stored in flat typed arrays, so observing a value allocates nothing.
 */

/**
 * Envoy's default histogram buckets (`Stats::HistogramSettingsImpl::defaultBuckets`). Istio sets no
 * `histogram_bucket_settings` in its bootstrap unless the `sidecar.istio.io/statsHistogramBuckets`
 * annotation asks for it, so every `istio_*` histogram a stock sidecar exposes uses these bounds.
 */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
]);

/** Bounds of `istio_request_duration_milliseconds` (milliseconds). */
export const ISTIO_DURATION_BUCKETS_MS: readonly number[] = ENVOY_DEFAULT_BUCKETS;

/** Bounds of `istio_request_bytes` and `istio_response_bytes` (bytes): the same Envoy defaults. */
export const ISTIO_BYTES_BUCKETS: readonly number[] = ENVOY_DEFAULT_BUCKETS;

/**
 * Index of the first bound `>= value` (Prometheus `le` semantics), or `bounds.length` for the
 * +Inf bucket. A linear scan: with 19 bounds and most values small it beats a binary search.
 */
export function bucketIndex(bounds: readonly number[], value: number): number {
  const n = bounds.length;
  for (let i = 0; i < n; i++) {
    if (value <= bounds[i]) return i;
  }
  return n;
}

/**
 * Non-cumulative bucket counts (`counts[i]` = observations in (bounds[i-1], bounds[i]], the last
 * slot is +Inf) plus count and sum. Cumulated only when rendered.
 */
export class FixedHistogram {
  readonly counts: Float64Array;
  count = 0;
  sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    this.counts[bucketIndex(this.bounds, value)]++;
    this.count++;
    this.sum += value;
  }

  /** Cumulative counts, one per bound plus +Inf (the Prometheus `_bucket` values). */
  cumulative(): number[] {
    const out = new Array<number>(this.counts.length);
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i];
      out[i] = acc;
    }
    return out;
  }
}
