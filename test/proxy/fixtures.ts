import type { ProxySnapshot, Route, RetryPolicy, UpstreamCluster, ConnectionPool, Endpoint } from '../../src/mesh/snapshot.js';
import { SNAPSHOT_FORMAT } from '../../src/mesh/snapshot.js';

export const NO_RETRY: RetryPolicy = { attempts: 0, retryOn: [], retriableStatusCodes: [], backoffBaseMs: 25 };
export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 2,
  retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
  retriableStatusCodes: [],
  backoffBaseMs: 25,
};

export function route(partial: Partial<Route> & Pick<Route, 'action'>): Route {
  return { name: partial.name ?? 'r', match: [], retry: NO_RETRY, mirrors: [], ...partial };
}

export function toCluster(name: string, cluster = name): Route['action'] {
  return { kind: 'route', destinations: [{ cluster, weight: 100 }] };
}

export const BIG = 4294967295;
export const DEFAULT_POOL: ConnectionPool = {
  maxConnections: BIG,
  connectTimeoutMs: 10000,
  http1MaxPendingRequests: BIG,
  http2MaxRequests: BIG,
  maxRequestsPerConnection: 0,
  maxRetries: BIG,
  idleTimeoutMs: 3600000,
};

export function cluster(name: string, partial: Partial<UpstreamCluster> = {}): UpstreamCluster {
  return {
    name,
    service: partial.service ?? `${name}.default.svc.cluster.local`,
    port: 80,
    lb: { simple: 'LEAST_REQUEST' },
    connectionPool: DEFAULT_POOL,
    ...partial,
  };
}

export function endpoint(port: number, labels: Record<string, string> = {}, address = '127.0.0.1'): Endpoint {
  return { address, port, labels, tlsMode: 'disabled', weight: 1 };
}

let counter = 0;
/** A sidecar snapshot with one `outbound` route config. */
export function snapshot(parts: {
  hosts?: Array<{ domains: string[]; routes: Route[] }>;
  clusters?: UpstreamCluster[];
  endpoints?: Record<string, Endpoint[]>;
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  mode?: 'sidecar' | 'gateway';
  listeners?: ProxySnapshot['listeners'];
  routeConfigs?: ProxySnapshot['routeConfigs'];
}): ProxySnapshot {
  counter++;
  return {
    format: SNAPSHOT_FORMAT,
    version: counter.toString(16).padStart(16, '0'),
    meshVersion: '1.22.0',
    proxy: {
      id: 'c1/default/test/0',
      cluster: 'c1',
      namespace: 'default',
      workload: 'test',
      labels: { app: 'test', version: 'v1' },
      service: 'test',
      serviceAccount: 'default',
      mode: parts.mode ?? 'sidecar',
    },
    mesh: {
      trustDomain: 'cluster.local',
      rootNamespace: 'istio-system',
      enableAutoMtls: true,
      outboundTrafficPolicy: parts.outboundTrafficPolicy ?? 'ALLOW_ANY',
      connectTimeoutMs: 10000,
      defaultRetry: DEFAULT_RETRY,
      extensionProviders: [],
    },
    routeConfigs: parts.routeConfigs ?? [
      {
        name: 'outbound',
        virtualHosts: (parts.hosts ?? []).map((h, i) => ({ name: `vh${i}`, domains: h.domains, routes: h.routes })),
      },
    ],
    clusters: parts.clusters ?? [],
    endpoints: Object.entries(parts.endpoints ?? {}).map(([c, eps]) => ({ cluster: c, endpoints: eps })),
    listeners: parts.listeners ?? [],
    inbound: { mtlsMode: 'PERMISSIVE', portLevelMtls: {}, authorization: [], jwtRules: [] },
    telemetry: { accessLog: false, accessLogEncoding: 'JSON', metrics: true, tracingSamplingPercent: 0 },
  };
}
