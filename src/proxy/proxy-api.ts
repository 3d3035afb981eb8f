import type { pino, Logger } from 'pino';
import type { ProxySnapshot } from '../mesh/snapshot.js';
import type { InboundFilter, ProxyTlsProvider } from './extensions.js';
import type { VersionStats } from './telemetry/index.js';

/** The proxy's public surface: options, status views and the Proxy handle (implemented in server.ts). */

export interface ProxyOptions {
  mode: 'sidecar' | 'gateway';
  /** Sidecar outbound listener port (0 = any free port). */
  outboundPort?: number;
  /** Sidecar inbound listener port (0 = any free port). */
  inboundPort?: number;
  /** The local application's port (sidecar inbound target). */
  appPort?: number;
  /** Default 127.0.0.1. */
  appHost?: string;
  /** Address the traffic listeners bind (default 0.0.0.0; gateway listeners' own `bind` wins). */
  bindAddress?: string;
  /** Admin API port (0 = any free port; undefined = no admin API). */
  adminPort?: number;
  /** Admin bind address, loopback by default. */
  adminAddress?: string;
  /** Where the last good snapshot is persisted and read back on start. */
  stateDir?: string;
  /** Applied before listening (e.g. read from --config). */
  initialSnapshot?: unknown;
  logger?: Logger;
  tls?: ProxyTlsProvider;
  inboundFilter?: InboundFilter;
  /** Random source for splits, faults, mirrors and balancers (tests inject a seeded one). */
  random?: () => number;
  /** Access-log destination (default stdout). */
  accessLogDestination?: pino.DestinationStream;
  /** A request head must arrive completely within this long of its first byte (default 20 s). */
  headTimeoutMs?: number;
  /**
   * false: plaintext listeners use node:http instead of the lean HTTP/1.1 fast path (an escape
   * hatch; upstreams keep the lean pool). Default true.
   */
  fastPath?: boolean;
}

export type ApplyResult = { ok: true; version: string; unchanged?: boolean } | { ok: false; error: string };

export interface ProxyStatus {
  version: string;
  mode: 'sidecar' | 'gateway';
  snapshotVersion: string | undefined;
  meshVersion: string | undefined;
  snapshotSource: string | undefined;
  appliedAt: string | undefined;
  uptimeSeconds: number;
  lastRejected: { at: string; reason: string; source: string } | undefined;
  draining: boolean;
  inflight: number;
  listenerErrors: string[];
}

export interface Proxy {
  /** Validates, compiles and swaps in a snapshot; a refused one leaves the current one in force. */
  applySnapshot(snapshot: unknown, source?: string): ApplyResult;
  /**
   * Re-reads upstream TLS from the TLS extension for the current snapshot (after a certificate
   * rotation): clusters whose client TLS changed get new pools; the old ones drain.
   */
  reloadTls(): void;
  /** Records a snapshot refused before it reached applySnapshot (e.g. a config file that does not parse). */
  reportRejected(reason: string, source: string): void;
  /** Stops accepting, drains in-flight requests up to `drainMs` (default 5000), then closes everything. */
  close(opts?: { drainMs?: number }): Promise<void>;
  /** Bound ports: outbound/inbound (sidecar), admin, and gateway listeners by name. */
  readonly ports: { outbound?: number; inbound?: number; admin?: number; gateway: Record<string, number> };
  /** Resolves once every gateway listener of the current snapshot is bound. */
  listening(): Promise<void>;
  status(): ProxyStatus;
  currentSnapshot(): ProxySnapshot | undefined;
  clusters(): ClusterView[];
  renderPrometheus(): string;
  /** Cumulative request counters per mesh version (for rollout analysis heartbeats). */
  versionStats(): VersionStats[];
}

export interface ClusterView {
  name: string;
  service: string;
  activeRequests: number;
  endpoints: Array<{ address: string; port: number; healthy: boolean; ejections: number; ejected: boolean; activeRequests: number; totalRequests: number; labels: Record<string, string> }>;
}
