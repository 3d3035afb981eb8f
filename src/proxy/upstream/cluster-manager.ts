import { readFileSync } from 'node:fs';
import type { Endpoint, ProxySnapshot, UpstreamCluster } from '../../mesh/snapshot.js';
import { ClusterRuntime } from './cluster.js';
import type { PoolSettings } from './endpoint.js';

/**
 * Upstream TLS options for undici's `connect` (a subset of tls.ConnectionOptions). A provider that
 * decides per endpoint (auto mTLS) returns `endpointTls` instead: the cluster then has no TLS of its
 * own, each endpoint gets `endpointTls(endpoint)`, and the other keys only identify the setting
 * (a change, such as a rotated certificate's serial, rebuilds the cluster's pools).
 */
export type ClientTlsOptions = Record<string, unknown> & {
  servername?: string;
  endpointTls?: (endpoint: Endpoint) => ClientTlsOptions | undefined;
};

export interface PreparedClusters {
  clusters: Map<string, ClusterRuntime>;
  endpoints: Map<string, Endpoint[]>;
}

export type ClientTlsProvider = (cluster: UpstreamCluster) => ClientTlsOptions | undefined;

function poolSettings(c: UpstreamCluster, tls: ClientTlsOptions | undefined): PoolSettings {
  const cp = c.connectionPool;
  if (tls?.endpointTls) {
    return { ...poolSettings(c, undefined), endpointTls: tls.endpointTls };
  }
  return {
    connections: cp.maxConnections >= 1_000_000 ? null : Math.max(1, cp.maxConnections),
    connectTimeoutMs: cp.connectTimeoutMs > 0 ? cp.connectTimeoutMs : 10_000,
    maxRequestsPerConnection: cp.maxRequestsPerConnection,
    idleTimeoutMs: cp.idleTimeoutMs,
    tls,
    scheme: tls ? 'https' : 'http',
  };
}

/** SIMPLE / MUTUAL TLS from the DestinationRule's certificate files; read at apply time (errors refuse the snapshot). */
export function fileTls(c: UpstreamCluster): ClientTlsOptions | undefined {
  const t = c.tls;
  if (!t || (t.mode !== 'SIMPLE' && t.mode !== 'MUTUAL')) return undefined;
  const read = (path: string, field: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cluster ${c.name}: tls.${field} ${path}: ${(err as Error).message}`);
    }
  };
  const opts: ClientTlsOptions = { rejectUnauthorized: t.insecureSkipVerify !== true };
  if (t.sni) opts.servername = t.sni;
  if (t.caCertificates) opts.ca = read(t.caCertificates, 'caCertificates');
  if (t.mode === 'MUTUAL') {
    if (t.clientCertificate) opts.cert = read(t.clientCertificate, 'clientCertificate');
    if (t.privateKey) opts.key = read(t.privateKey, 'privateKey');
  }
  return opts;
}

/**
 * Owns every ClusterRuntime across snapshots (a factory-injected cluster manager). `prepare` builds
 * the next cluster map without touching the live one (so a failing snapshot changes nothing);
 * `commit` makes it current and retires what left.
 */
export class ClusterManager {
  private current = new Map<string, ClusterRuntime>();
  private retired = new Set<ClusterRuntime>();

  constructor(private readonly tlsProvider?: ClientTlsProvider) {}

  prepare(s: ProxySnapshot): PreparedClusters {
    const next = new Map<string, ClusterRuntime>();
    const endpoints = new Map(s.endpoints.map((e) => [e.cluster, e.endpoints]));
    for (const c of s.clusters) {
      const tls = this.tlsProvider?.(c) ?? fileTls(c);
      const defKey = JSON.stringify([c, tls === undefined ? null : Object.keys(tls).sort().map((k) => [k, String(tls[k])])]);
      const existing = this.current.get(c.name);
      const runtime = existing && existing.defKey === defKey ? existing : new ClusterRuntime(c, defKey, poolSettings(c, tls));
      next.set(c.name, runtime);
    }
    // Endpoints are only set on commit, so a refused snapshot leaves kept clusters untouched.
    return { clusters: next, endpoints };
  }

  commit(prepared: PreparedClusters): void {
    const next = prepared.clusters;
    for (const [name, runtime] of next) runtime.setEndpoints(prepared.endpoints.get(name) ?? []);
    for (const [name, old] of this.current) {
      if (next.get(name) !== old) {
        old.retire();
        this.retired.add(old);
      }
    }
    for (const r of this.retired) if (r.hosts.every((h) => h.active === 0)) this.retired.delete(r);
    this.current = next;
  }

  get clusters(): Map<string, ClusterRuntime> {
    return this.current;
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.current.values(), ...this.retired].map((c) => c.destroy()));
  }
}
