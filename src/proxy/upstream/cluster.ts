import type { UpstreamCluster, Endpoint, OutlierDetectionPolicy } from '../../mesh/snapshot.js';
import { createBalancer, hash32, type Balancer } from './balancer.js';
import { EndpointState, endpointKey, endpointTlsKey, type PoolSettings } from './endpoint.js';

/** What consistent hashing may key on. */
export interface HashInput {
  headers: Record<string, string | string[] | undefined>;
  remoteAddress: string | undefined;
  query: string;
}

const UNLIMITED = 1_000_000;

/**
 * One upstream cluster at run time: its hosts, the healthy subset, the balancer, circuit-breaker
 * counters and outlier detection. It outlives snapshots whose definition of it is unchanged, so
 * counters, ejections and keep-alive connections survive reconfiguration.
 */
export class ClusterRuntime {
  readonly name: string;
  hosts: EndpointState[] = [];
  healthy: EndpointState[] = [];
  /** Requests in flight (attempts) across hosts: the connection + pending circuit breaker. */
  active = 0;
  /** Retries in flight: the maxRetries circuit breaker. */
  retriesActive = 0;
  readonly capacity: number;
  readonly hashKey: ((input: HashInput) => number | undefined) | undefined;
  readonly cookie: { name: string; path?: string; ttlMs?: number } | undefined;
  removed = false;
  /** maxRequestsPerConnection 1: every request closes its connection (Istio: disables keep-alive). */
  readonly noKeepAlive: boolean;
  /** SNI for originated TLS when configured (DestinationRule `tls.sni` or the TLS extension). */
  readonly sni: string | undefined;
  private readonly balancer: Balancer;
  private readonly outlier: OutlierDetectionPolicy | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly def: UpstreamCluster,
    readonly defKey: string,
    private readonly poolSettings: PoolSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.name = def.name;
    this.balancer = createBalancer(def.lb);
    const cp = def.connectionPool;
    this.capacity = cp.maxConnections >= UNLIMITED || cp.http1MaxPendingRequests >= UNLIMITED ? Infinity : cp.maxConnections + cp.http1MaxPendingRequests;
    this.outlier = def.outlierDetection && (def.outlierDetection.consecutive5xxErrors > 0 || def.outlierDetection.consecutiveGatewayErrors > 0) ? def.outlierDetection : undefined;
    this.hashKey = compileHashKey(def);
    this.noKeepAlive = cp.maxRequestsPerConnection === 1;
    this.sni = typeof poolSettings.tls?.servername === 'string' ? poolSettings.tls.servername : undefined;
    this.cookie = 'consistentHash' in def.lb ? def.lb.consistentHash.httpCookie : undefined;
    if (this.outlier) {
      this.sweepTimer = setInterval(() => this.sweep(), Math.max(10, this.outlier.intervalMs));
      this.sweepTimer.unref();
    }
  }

  get maxRetries(): number {
    return this.def.connectionPool.maxRetries;
  }

  /** Replaces the host set: kept hosts keep their state, new ones are added, removed ones drain. */
  setEndpoints(endpoints: Endpoint[]): void {
    const old = new Map(this.hosts.map((h) => [h.key, h]));
    const next: EndpointState[] = [];
    for (const e of endpoints) {
      const key = endpointKey(e);
      let existing = old.get(key);
      // Per-endpoint TLS: a host whose TLS inputs changed (e.g. it gained a sidecar) reconnects; the old pool drains.
      if (existing && this.poolSettings.endpointTls && endpointTlsKey(existing.endpoint) !== endpointTlsKey(e)) existing = undefined;
      if (existing) {
        // Metric labels come from the endpoint's labels: resolve the series again if they changed.
        if (JSON.stringify(existing.endpoint.labels) !== JSON.stringify(e.labels) || existing.endpoint.workload !== e.workload || existing.endpoint.namespace !== e.namespace) {
          existing.series = undefined;
        }
        existing.endpoint = e;
        old.delete(key);
        next.push(existing);
      } else if (!next.some((h) => h.key === key)) {
        next.push(new EndpointState(e, this.poolSettings));
      }
    }
    for (const gone of old.values()) gone.drain();
    this.hosts = next;
    this.recomputeHealthy();
  }

  /** Hosts a request may use now: the healthy set, or all hosts in panic (healthy% < minHealthPercent). */
  candidates(): EndpointState[] {
    if (!this.outlier || this.healthy.length === this.hosts.length) return this.hosts;
    const pct = this.hosts.length ? (this.healthy.length * 100) / this.hosts.length : 0;
    if (pct < this.outlier.minHealthPercent) return this.hosts;
    return this.healthy;
  }

  /** Picks a host, avoiding `exclude` (previous attempts) when another host exists (5 tries, as Envoy). */
  pick(hash: number | undefined, random: () => number, exclude?: EndpointState[]): EndpointState | undefined {
    const hosts = this.candidates();
    if (hosts.length === 0) return undefined;
    let h = this.balancer.pick(hosts, hash, random);
    if (exclude && exclude.length && hosts.length > 1 && hash === undefined) {
      for (let i = 0; i < 5 && exclude.includes(h); i++) h = this.balancer.pick(hosts, hash, random);
    }
    return h;
  }

  /** Outlier detection input: the outcome of one attempt on `host`. */
  report(host: EndpointState, status: number, failed: boolean): void {
    const od = this.outlier;
    if (!od) return;
    const s = host.outlier;
    const is5xx = failed || status >= 500;
    const isGateway = failed || status === 502 || status === 503 || status === 504;
    if (!is5xx) {
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return;
    }
    s.consecutive5xx++;
    if (isGateway) s.consecutiveGateway++; else s.consecutiveGateway = 0;
    if (s.ejected) return;
    const trip =
      (od.consecutive5xxErrors > 0 && s.consecutive5xx >= od.consecutive5xxErrors) ||
      (od.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= od.consecutiveGatewayErrors);
    if (trip) this.eject(host, od);
  }

  private eject(host: EndpointState, od: OutlierDetectionPolicy): void {
    const ejectedNow = this.hosts.length - this.healthy.length;
    const pct = ((ejectedNow + 1) * 100) / this.hosts.length;
    if (pct > od.maxEjectionPercent) return;
    const s = host.outlier;
    s.ejections++;
    s.ejected = true;
    s.ejectedUntil = this.now() + od.baseEjectionTimeMs * s.ejections;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    this.recomputeHealthy();
  }

  /** Runs every `interval`: returns hosts whose ejection time has passed. */
  sweep(): void {
    const now = this.now();
    let changed = false;
    for (const h of this.hosts) {
      if (h.outlier.ejected && h.outlier.ejectedUntil <= now) {
        h.outlier.ejected = false;
        changed = true;
      }
    }
    if (changed) this.recomputeHealthy();
  }

  private recomputeHealthy(): void {
    this.healthy = this.hosts.filter((h) => !h.outlier.ejected);
    this.balancer.rebuild(this.healthy);
  }

  /** The cluster left the snapshot (or changed definition): hosts drain, timers stop. */
  retire(): void {
    this.removed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const h of this.hosts) h.drain();
  }

  async destroy(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await Promise.all(this.hosts.map((h) => h.destroy()));
  }

  hashFor(input: HashInput): number | undefined {
    return this.hashKey?.(input);
  }
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function compileHashKey(def: UpstreamCluster): ((input: HashInput) => number | undefined) | undefined {
  if (!('consistentHash' in def.lb)) return undefined;
  const ch = def.lb.consistentHash;
  if (ch.httpHeaderName) {
    const name = ch.httpHeaderName.toLowerCase();
    return (i) => {
      const v = i.headers[name];
      return v === undefined ? undefined : hash32(Array.isArray(v) ? v.join(',') : v);
    };
  }
  if (ch.httpCookie) {
    const name = ch.httpCookie.name;
    return (i) => {
      const v = cookieValue(i.headers.cookie, name);
      return v === undefined ? undefined : hash32(v);
    };
  }
  if (ch.useSourceIp) return (i) => (i.remoteAddress ? hash32(i.remoteAddress) : undefined);
  if (ch.httpQueryParameterName) {
    const name = ch.httpQueryParameterName;
    return (i) => {
      if (!i.query) return undefined;
      const v = new URLSearchParams(i.query).get(name);
      return v === null ? undefined : hash32(v);
    };
  }
  return undefined;
}
