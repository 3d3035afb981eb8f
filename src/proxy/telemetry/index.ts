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
