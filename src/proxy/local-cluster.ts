import type { ConnectionPool } from '../mesh/snapshot.js';

/** Pool settings of the clusters the proxy makes itself (inbound app, ALLOW_ANY passthrough): Istio's defaults. */
export const DEFAULT_POOL_FOR_LOCAL: ConnectionPool = {
  maxConnections: 4294967295,
  connectTimeoutMs: 10_000,
  http1MaxPendingRequests: 4294967295,
  http2MaxRequests: 4294967295,
  maxRequestsPerConnection: 0,
  maxRetries: 4294967295,
  idleTimeoutMs: 3_600_000,
};
