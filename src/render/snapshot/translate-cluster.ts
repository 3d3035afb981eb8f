import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection,
  TrafficPolicy,
} from '../../mesh/api/index.js';
import type { ConnectionPool, LoadBalancer, OutlierDetectionPolicy, UpstreamTls } from '../../mesh/snapshot.js';
import { MAX_UINT32, compact, durationMs } from './common.js';

export const DEFAULT_RING_SIZE = 1024;
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;

/** The four per-cluster aspects of a traffic policy, after subset and port-level overrides. */
export interface EffectivePolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

function applyPolicy(into: EffectivePolicy, policy: TrafficPolicy | undefined, port: number): void {
  if (!policy) return;
  const overlay = (p: EffectivePolicy): void => {
    if (p.loadBalancer) into.loadBalancer = p.loadBalancer;
    if (p.connectionPool) into.connectionPool = p.connectionPool;
    if (p.outlierDetection) into.outlierDetection = p.outlierDetection;
    if (p.tls) into.tls = p.tls;
  };
  overlay(policy);
  const portLevel = policy.portLevelSettings?.find((s) => s.port?.number === port);
  if (portLevel) overlay(portLevel);
}

/**
 * Istio `MergeTrafficPolicy`: the top-level policy, then its port-level settings for this port,
 * then the subset's policy and its port-level settings; each aspect is replaced as a whole.
 */
export function mergeTrafficPolicy(top: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): EffectivePolicy {
  const out: EffectivePolicy = {};
  applyPolicy(out, top, port);
  applyPolicy(out, subset, port);
  return out;
}

/** UNSPECIFIED and LEAST_CONN (deprecated alias) are LEAST_REQUEST, Istio's default. */
export function translateLoadBalancer(lb: LoadBalancerSettings | undefined): LoadBalancer {
  const hash = lb?.consistentHash;
  if (hash) {
    return {
      consistentHash: compact({
        httpHeaderName: hash.httpHeaderName,
        httpCookie: hash.httpCookie
          ? compact({ name: hash.httpCookie.name, path: hash.httpCookie.path, ttlMs: durationMs(hash.httpCookie.ttl) })
          : undefined,
        useSourceIp: hash.useSourceIp,
        httpQueryParameterName: hash.httpQueryParameterName,
        minimumRingSize: hash.ringHash?.minimumRingSize ?? hash.minimumRingSize ?? DEFAULT_RING_SIZE,
      }),
    };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
    case 'RANDOM':
    case 'PASSTHROUGH':
      return { simple: lb.simple };
    default:
      return { simple: 'LEAST_REQUEST' };
  }
}

export function translateConnectionPool(pool: ConnectionPoolSettings | undefined, meshConnectTimeoutMs: number): ConnectionPool {
  const tcp = pool?.tcp;
  const http = pool?.http;
  return {
    maxConnections: tcp?.maxConnections ?? MAX_UINT32,
    connectTimeoutMs: durationMs(tcp?.connectTimeout) ?? meshConnectTimeoutMs,
    http1MaxPendingRequests: http?.http1MaxPendingRequests ?? MAX_UINT32,
    http2MaxRequests: http?.http2MaxRequests ?? MAX_UINT32,
    maxRequestsPerConnection: http?.maxRequestsPerConnection ?? 0,
    maxRetries: http?.maxRetries ?? MAX_UINT32,
    idleTimeoutMs: durationMs(http?.idleTimeout) ?? durationMs(tcp?.idleTimeout) ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
}

/** Only rendered when the DestinationRule configures it; then Istio's defaults fill the gaps. */
export function translateOutlierDetection(od: OutlierDetection | undefined): OutlierDetectionPolicy | undefined {
  if (!od) return undefined;
  return {
    consecutive5xxErrors: od.consecutive5xxErrors ?? od.consecutiveErrors ?? 5,
    consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? 0,
    intervalMs: durationMs(od.interval) ?? 10_000,
    baseEjectionTimeMs: durationMs(od.baseEjectionTime) ?? 30_000,
    maxEjectionPercent: od.maxEjectionPercent ?? 10,
    minHealthPercent: od.minHealthPercent ?? 0,
  };
}

/**
 * DestinationRule TLS, or undefined (auto mTLS decides). ISTIO_MUTUAL checks the server's SPIFFE id
 * against the service's accounts (secure naming); the DR's own subjectAltNames are for SIMPLE/MUTUAL.
 */
export function translateClientTls(tls: ClientTLSSettings | undefined, serviceSpiffeIds: string[]): UpstreamTls | undefined {
  if (!tls || !tls.mode) return undefined;
  if (tls.mode === 'ISTIO_MUTUAL') {
    return compact({ mode: 'ISTIO_MUTUAL' as const, sni: tls.sni, subjectAltNames: [...serviceSpiffeIds] });
  }
  if (tls.mode === 'DISABLE') return { mode: 'DISABLE', subjectAltNames: [] };
  return compact({
    mode: tls.mode,
    sni: tls.sni,
    caCertificates: tls.caCertificates,
    clientCertificate: tls.mode === 'MUTUAL' ? tls.clientCertificate : undefined,
    privateKey: tls.mode === 'MUTUAL' ? tls.privateKey : undefined,
    subjectAltNames: [...(tls.subjectAltNames ?? [])],
    insecureSkipVerify: tls.insecureSkipVerify,
  });
}
