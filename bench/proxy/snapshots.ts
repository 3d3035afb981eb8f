/** The bench's two proxy configurations: a simple catch-all route and the realistic route. */
import { SNAPSHOT_FORMAT, type ProxySnapshot, type Route, type RetryPolicy } from '../../src/mesh/snapshot.js';

const NO_RETRY: RetryPolicy = { attempts: 0, retryOn: [], retriableStatusCodes: [], backoffBaseMs: 25 };
const POOL = { maxConnections: 4294967295, connectTimeoutMs: 10000, http1MaxPendingRequests: 4294967295, http2MaxRequests: 4294967295, maxRequestsPerConnection: 0, maxRetries: 4294967295, idleTimeoutMs: 3600000 };

/**
 * simple: one catch-all route to one cluster, metrics on. realistic: a header-match route, then a
 * 60/30/10 split over 3 clusters (3 upstream pools to the same server), retries (2 on
 * `5xx,connect-failure`), metrics and access log off. `n` varies the weights (hot reconfiguration).
 */
export function makeSnapshot(upstreamPort: number, realistic: boolean, n = 0): ProxySnapshot {
  const clusters = realistic ? ['v1', 'v2', 'v3'] : ['v1'];
  const retry: RetryPolicy = realistic ? { attempts: 2, retryOn: ['5xx', 'connect-failure'], retriableStatusCodes: [], backoffBaseMs: 25 } : NO_RETRY;
  const routes: Route[] = realistic
    ? [
        { name: 'canary', match: [{ headers: { 'end-user': { exact: 'jason' } } }], action: { kind: 'route', destinations: [{ cluster: 'v2', weight: 1 }] }, retry, mirrors: [] },
        { name: 'split', match: [{ uri: { prefix: '/' } }], action: { kind: 'route', destinations: [{ cluster: 'v1', weight: 60 + (n % 20) }, { cluster: 'v2', weight: 30 }, { cluster: 'v3', weight: 10 }] }, retry, mirrors: [] },
      ]
    : [{ name: 'default', match: [], action: { kind: 'route', destinations: [{ cluster: 'v1', weight: 100 }] }, retry: NO_RETRY, mirrors: [] }];
  return {
    format: SNAPSHOT_FORMAT,
    version: `${realistic ? 'b' : 'a'}${n.toString(16).padStart(15, '0')}`,
    meshVersion: 'bench',
    proxy: { id: 'bench/default/bench/0', cluster: 'bench', namespace: 'default', workload: 'bench', labels: {}, serviceAccount: 'default', mode: 'sidecar' },
    mesh: { trustDomain: 'cluster.local', rootNamespace: 'istio-system', enableAutoMtls: false, outboundTrafficPolicy: 'REGISTRY_ONLY', connectTimeoutMs: 10000, defaultRetry: NO_RETRY, extensionProviders: [] },
    routeConfigs: [{ name: 'outbound', virtualHosts: [{ name: 'svc', domains: ['svc', 'svc:80'], routes }] }],
    clusters: clusters.map((name) => ({ name, service: `${name}.default.svc.cluster.local`, port: 80, lb: { simple: 'LEAST_REQUEST' }, connectionPool: POOL })),
    endpoints: clusters.map((cluster) => ({ cluster, endpoints: [{ address: '127.0.0.1', port: upstreamPort, labels: { version: cluster }, tlsMode: 'disabled', weight: 1 }] })),
    listeners: [],
    inbound: { mtlsMode: 'PERMISSIVE', portLevelMtls: {}, authorization: [], jwtRules: [] },
    telemetry: { accessLog: false, accessLogEncoding: 'JSON', metrics: !realistic, tracingSamplingPercent: 0 },
  };
}

