import { Pool } from 'undici';
import type { Endpoint } from '../../mesh/snapshot.js';

/** undici options for the pools of one cluster, derived once from its connectionPool settings. */
export interface PoolSettings {
  connections: number | null;
  connectTimeoutMs: number;
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  /** TLS options for the upstream connection (undici `connect`), when the cluster originates TLS. */
  tls?: Record<string, unknown>;
  /** `http` or `https`. */
  scheme: 'http' | 'https';
}

/** Outlier-detection state of one host within one cluster. */
export interface OutlierState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejected: boolean;
  ejectedUntil: number;
  ejections: number;
}

/**
 * One upstream host of one cluster: its keep-alive pool (created lazily), request counters and
 * outlier state. Removed hosts are drained: the pool is closed once no request uses it.
 */
export class EndpointState {
  readonly key: string;
  readonly origin: string;
  active = 0;
  total = 0;
  draining = false;
  outlier: OutlierState = { consecutive5xx: 0, consecutiveGateway: 0, ejected: false, ejectedUntil: 0, ejections: 0 };
  /** Per-endpoint telemetry handle, resolved lazily by the observer. */
  series: unknown;
  private pool: Pool | undefined;

  constructor(
    public endpoint: Endpoint,
    private readonly settings: PoolSettings,
  ) {
    this.key = endpointKey(endpoint);
    const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
    this.origin = `${settings.scheme}://${host}:${endpoint.port}`;
  }

  getPool(): Pool {
    if (this.pool) return this.pool;
    const s = this.settings;
    this.pool = new Pool(this.origin, {
      connections: s.connections,
      pipelining: 1,
      connectTimeout: s.connectTimeoutMs,
      keepAliveTimeout: s.idleTimeoutMs > 0 ? Math.min(s.idleTimeoutMs, 600_000) : 600_000,
      keepAliveMaxTimeout: s.idleTimeoutMs > 0 ? Math.min(s.idleTimeoutMs, 600_000) : 600_000,
      maxRequestsPerClient: s.maxRequestsPerConnection > 0 ? s.maxRequestsPerConnection : undefined,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: s.tls as never,
    });
    return this.pool;
  }

  acquire(): void {
    this.active++;
    this.total++;
  }

  release(): void {
    this.active--;
    if (this.draining && this.active === 0) this.closePool();
  }

  /** Stops using this host: closes the pool now if idle, else after the last request. */
  drain(): void {
    this.draining = true;
    if (this.active === 0) this.closePool();
  }

  closePool(): void {
    const p = this.pool;
    this.pool = undefined;
    if (p) p.close().catch(() => undefined);
  }

  destroy(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    return p ? p.destroy().catch(() => undefined) : Promise.resolve();
  }
}

export function endpointKey(e: Endpoint): string {
  return `${e.address}:${e.port}`;
}
