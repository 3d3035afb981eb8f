/**
 * Istio's histogram bounds and the bucket lookup used on the hot path.
 *
 * Counts live in flat Float64Arrays owned by the caller (see istio-metrics.ts); observing a value
 * allocates nothing.
 */

const ENVOY_BOUNDS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];

/**
 * Envoy's default histogram buckets (`Stats::HistogramSettingsImpl::defaultBuckets`). Istio sets no
 * `histogram_bucket_settings` in its bootstrap unless the `sidecar.istio.io/statsHistogramBuckets`
 * annotation asks for it, so every `istio_*` histogram a stock sidecar exposes uses these bounds
 * (the 1, 10, …, 10^7 byte buckets were Mixer's, before Istio 1.5).
 */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = Object.freeze(ENVOY_BOUNDS.slice());

/** Bounds of `istio_request_duration_milliseconds` (milliseconds). */
export const ISTIO_DURATION_BUCKETS_MS: readonly number[] = ENVOY_DEFAULT_BUCKETS;

/** Bounds of `istio_request_bytes` and `istio_response_bytes` (bytes): the same Envoy defaults. */
export const ISTIO_BYTES_BUCKETS: readonly number[] = ENVOY_DEFAULT_BUCKETS;

/** Number of count slots of one Istio histogram: one per bound plus +Inf. */
export const ISTIO_BUCKET_SLOTS = ENVOY_BOUNDS.length + 1;

/**
 * Index of the first bound `>= value` (Prometheus `le` semantics), or `bounds.length` for the
 * +Inf bucket. Generic and simple; the hot path uses envoyBucket (reading a frozen array in a
 * loop is several times slower in V8, which is why the hot path never does).
 */
export function bucketIndex(bounds: readonly number[], value: number): number {
  const n = bounds.length;
  for (let i = 0; i < n; i++) {
    if (value <= bounds[i]) return i;
  }
  return n;
}

/**
 * bucketIndex(ENVOY_DEFAULT_BUCKETS, value) as a branch tree: at most 5 comparisons instead of up
 * to 19, and no array reads. NaN lands in +Inf. A test checks it against bucketIndex at every bound.
 */
export function envoyBucket(v: number): number {
  if (v <= 100) {
    if (v <= 5) return v <= 0.5 ? 0 : v <= 1 ? 1 : 2;
    return v <= 10 ? 3 : v <= 25 ? 4 : v <= 50 ? 5 : 6;
  }
  if (v <= 10000) {
    if (v <= 1000) return v <= 250 ? 7 : v <= 500 ? 8 : 9;
    return v <= 2500 ? 10 : v <= 5000 ? 11 : 12;
  }
  if (v <= 300000) return v <= 30000 ? 13 : v <= 60000 ? 14 : 15;
  return v <= 600000 ? 16 : v <= 1800000 ? 17 : v <= 3600000 ? 18 : 19;
}

/** Turns non-cumulative slot counts `counts[from .. from+slots)` into Prometheus cumulative counts. */
export function cumulate(counts: Float64Array, from: number, slots: number): number[] {
  const out = new Array<number>(slots);
  let acc = 0;
  for (let i = 0; i < slots; i++) {
    acc += counts[from + i];
    out[i] = acc;
  }
  return out;
}
