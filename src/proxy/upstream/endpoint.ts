import { createRequire } from 'node:module';
import type { Dispatcher, Pool } from 'undici';
import type { Endpoint } from '../../mesh/snapshot.js';
import { H1Pool, type H1DispatchOptions } from '../h1/upstream-pool.js';

/** What an exchange dispatches to: the lean HTTP/1.1 pool (plaintext) or undici (TLS). */
export interface UpstreamPool {
  dispatch(opts: H1DispatchOptions & { servername?: string; headersTimeout?: number; bodyTimeout?: number; upgrade?: null }, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

const require = createRequire(import.meta.url);
let undiciPool: typeof Pool | undefined;
/** undici costs ~20 MB of heap: loaded only when a cluster originates TLS. */
function loadUndiciPool(): typeof Pool {
  undiciPool ??= (require('undici') as typeof import('undici')).Pool;
  return undiciPool;
}

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
  /**
   * Per-endpoint TLS (auto mTLS: ISTIO_MUTUAL toward endpoints with tlsMode `istio`, plaintext to
   * the others). When set it replaces `tls` and `scheme` for each endpoint.
   */
  endpointTls?: (endpoint: Endpoint) => Record<string, unknown> | undefined;
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
  /** TLS options of this host's connections (undefined = plaintext). */
  readonly tls: Record<string, unknown> | undefined;
  active = 0;
  total = 0;
  draining = false;
  outlier: OutlierState = { consecutive5xx: 0, consecutiveGateway: 0, ejected: false, ejectedUntil: 0, ejections: 0 };
  /** Per-endpoint telemetry handle, resolved lazily by the observer. */
  series: unknown;
  private pool: UpstreamPool | undefined;

  constructor(
    public endpoint: Endpoint,
    private readonly settings: PoolSettings,
  ) {
    this.key = endpointKey(endpoint);
    const host = endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address;
    this.tls = settings.endpointTls ? settings.endpointTls(endpoint) : settings.tls;
    const scheme = settings.endpointTls ? (this.tls ? 'https' : 'http') : settings.scheme;
    this.origin = `${scheme}://${host}:${endpoint.port}`;
  }

  getPool(): UpstreamPool {
    if (this.pool) return this.pool;
    const s = this.settings;
    if (!this.tls) {
      this.pool = new H1Pool({
        address: this.endpoint.address,
        port: this.endpoint.port,
        connections: s.connections,
        connectTimeoutMs: s.connectTimeoutMs,
        idleTimeoutMs: s.idleTimeoutMs > 0 ? Math.min(s.idleTimeoutMs, 600_000) : 600_000,
        maxRequestsPerConnection: s.maxRequestsPerConnection,
      });
      return this.pool;
    }
    const UndiciPool = loadUndiciPool();
    this.pool = new UndiciPool(this.origin, {
      connections: s.connections,
      pipelining: 1,
      connectTimeout: s.connectTimeoutMs,
      keepAliveTimeout: s.idleTimeoutMs > 0 ? Math.min(s.idleTimeoutMs, 600_000) : 600_000,
      keepAliveMaxTimeout: s.idleTimeoutMs > 0 ? Math.min(s.idleTimeoutMs, 600_000) : 600_000,
      maxRequestsPerClient: s.maxRequestsPerConnection > 0 ? s.maxRequestsPerConnection : undefined,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: this.tls as never,
    }) as unknown as UpstreamPool;
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

/** What per-endpoint TLS depends on: a kept host whose value changes gets a new pool. */
export function endpointTlsKey(e: Endpoint): string {
  return `${e.tlsMode}|${e.namespace ?? ''}|${e.serviceAccount ?? ''}`;
}
