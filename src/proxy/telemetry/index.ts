/**
 * Telemetry of the Trellis proxy: Istio's standard metrics, access logs, x-request-id and trace
 * propagation. The request path uses it like this:
 *
 * - Once per proxy: `new IstioMetrics({ proxy, meshVersion })`; on each snapshot
 *   `setMeshVersion(snapshot.meshVersion)`; `/stats/prometheus` answers `renderPrometheus()` with
 *   `PROMETHEUS_CONTENT_TYPE`; discovery heartbeats send `versionStats()`.
 * - Once per (route, destination endpoint's workload): `const h = metrics.series({...labels})`, kept
 *   with the endpoint; per request `h.observe(code, flags, durationMs, reqBytes, respBytes)`.
 *   `metrics.record(r)` does the same from a full record, at roughly twice the cost.
 *   Gateways report as `reporter: 'source'`, as Istio's gateways do.
 * - Once per listener/snapshot: `createAccessLogger({ enabled, encoding })`; per request
 *   `if (log.enabled) log.log({...})`, so a disabled log costs one branch.
 * - Per request: `ensureRequestId(headers)`, then `propagateTrace(headers, { samplingPercent })`.
 */
export {
  IstioMetrics,
  SeriesHandle,
  type RequestRecord,
  type VersionStats,
  type IstioMetricsOptions,
  type SeriesLabels,
  type Reporter,
  type RequestProtocol,
  type ConnectionSecurityPolicy,
} from './istio-metrics.js';
export { ISTIO_DURATION_BUCKETS_MS, ISTIO_BYTES_BUCKETS, ENVOY_DEFAULT_BUCKETS, bucketIndex, envoyBucket } from './histogram.js';
export {
  createAccessLogger,
  formatEnvoyText,
  type AccessLogger,
  type AccessLogEntry,
  type AccessLoggerOptions,
} from './access-log.js';
export { ensureRequestId } from './request-id.js';
export { propagateTrace, type TraceContext, type TraceSource, type PropagateOptions } from './trace-context.js';
export { escapeLabelValue, PROMETHEUS_CONTENT_TYPE } from './prometheus-text.js';
