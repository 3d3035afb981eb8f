import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { SILENT_LOGGER } from './silent-logger.js';
import type { ProxyIdentity, ProxySnapshot } from '../mesh/snapshot.js';
import type { WorkloadEndpoint } from '../render/types.js';
import type { Authenticator } from './auth.js';
import { certificateInfo } from './auth.js';
import { createDebouncer } from './debounce.js';
import type { Debouncer } from './debounce.js';
import { handleDebugRequest } from './debug-api.js';
import { EndpointRegistry, loadEndpointRegistryFile, saveEndpointRegistryFile } from './endpoint-registry.js';
import { createDiscoveryMetrics } from './metrics.js';
import type { DiscoveryMetrics } from './metrics.js';
import {
  CONTENT_TYPE,
  LineDecoder,
  PROTOCOL_VERSION,
  ProtocolError,
  STREAM_PATH,
  decodeProxyMessage,
  encodeMessage,
} from './protocol.js';
import type { CertificateInfo, ErrorMessage, HeartbeatStat, HelloMessage, ProxyMessage } from './protocol.js';
import { PushQueue } from './push-queue.js';
import { classifyReply, computeDrift } from './reply.js';
import type { DriftState, ReplyRecord } from './reply.js';
import { RESOURCES_V2_FEATURE, encodeDelta, snapshotContentHash, splitSnapshot } from './resources.js';
import type { EncodedDelta, ResourceGroup, ResourceLayout, SplitSnapshot } from './resources.js';
import { createDualProtocolServer } from './transport.js';
import type { AnyRequest, AnyResponse, DualProtocolServer, ServerTlsOptions } from './transport.js';
import { VersionStatsAggregator } from './version-stats.js';
import type { VersionStats } from './version-stats.js';

export type RenderFunction = (proxy: ProxyIdentity, endpoints: WorkloadEndpoint[]) => ProxySnapshot | Promise<ProxySnapshot>;

export interface DiscoveryServerOptions {
  /** Renders one proxy's snapshot (injected: the operator passes buildProxySnapshot bound to the current cluster render). */
  render: RenderFunction;
  /** Accepts or refuses a new stream after its hello; default accepts all (use spiffeAuthenticator with mTLS). */
  authenticate?: Authenticator;
  /** Serve TLS (mTLS when `ca` is given); plaintext h2c + HTTP/1.1 without. */
  tls?: ServerTlsOptions;
  /** Quiet period before a burst of changes is pushed (default 100 ms). */
  debounceMs?: number;
  /** Longest a burst may delay a push (default 10 s). */
  debounceMaxMs?: number;
  /**
   * The first change after a quiet period is pushed after only this long (default 10 ms; GitOps
   * commits arrive alone). Changes that follow within debounceMs form a burst and wait for quiet.
   */
  debounceLeadingMs?: number;
  /** A sent snapshot not acked within this long makes the proxy STALE (default 10 s). */
  staleAfterMs?: number;
  /**
   * A stream that carried no message (heartbeats included) for this long is closed and its proxy
   * DISCONNECTED: it catches hosts that vanished without closing TCP (default 60 s; 0 = never).
   * Keep it well above the proxies' heartbeat period.
   */
  idleTimeoutMs?: number;
  /** A disconnected proxy's endpoint is removed after this long (default 30 s). */
  endpointGraceMs?: number;
  /**
   * Persists the proxy-registered endpoints in this file (readable JSON, written atomically, at most
   * once per `persistEveryMs`, and at `close`). `listen` reads it back: its endpoints count as
   * registered, provisionally, until their proxy reconnects or `endpointGraceMs` passes, so the
   * first snapshots a restarted operator pushes already hold every endpoint.
   */
  endpointStateFile?: string;
  /** Shortest time between two writes of `endpointStateFile` (default 1 s). */
  persistEveryMs?: number;
  /**
   * For this long after `listen`, a proxy that connects already running a snapshot (it outlived an
   * operator restart) gets no push and keeps what it runs: without a persisted registry, the
   * endpoint registry of a restarted operator fills up only as proxies reconnect, and an early push
   * would lack the endpoints of proxies not back yet. When the hold ends, every held proxy is
   * synced. Not applied when `endpointStateFile` brought the registry back. Default 0 (no hold).
   */
  restartHoldMs?: number;
  /**
   * Period of the one timer that handles every deadline (endpoint grace, forgetting, idle streams,
   * deferred pushes of stale proxies, the restart hold, persistence). Default: a quarter of the
   * shortest of those periods, between 10 ms and 1 s.
   */
  sweepIntervalMs?: number;
  /** A disconnected proxy is dropped from status after this long (default 1 h). */
  forgetAfterMs?: number;
  /**
   * Recompute every rendered snapshot's content hash instead of trusting `version` (default false:
   * the renderer's contract says it is the content hash). Switched on by itself when a proxy
   * reports a hash mismatch on a full snapshot whose version turns out wrong.
   */
  verifyVersions?: boolean;
  /** Pushes rendered and sent at once (default 100). */
  maxConcurrentPushes?: number;
  /** prom-client registry to register metrics in (default: a new one, see `metrics`). */
  registry?: Registry;
  logger?: Logger;
}

export interface ProxyStatus {
  id: string;
  cluster: string;
  namespace: string;
  workload: string;
  service?: string;
  mode: ProxyIdentity['mode'];
  identity: ProxyIdentity;
  connected: boolean;
  sync: DriftState;
  proxyVersion: string;
  /** Mesh version of the snapshot the proxy runs (acked), else the one its hello reported. */
  meshVersion: string;
  desiredHash: string | null;
  sentHash: string | null;
  ackedHash: string | null;
  lastNack: { hash: string; reason: string; at: string } | null;
  lastHeartbeat: string | null;
  connectedAt: string | null;
  disconnectedAt: string | null;
  stats: HeartbeatStat[];
  /** Certificate of the proxy: its report if it sent one (it rotates), else the mTLS peer certificate. */
  certificate: (CertificateInfo & { source: 'proxy-report' | 'mtls-peer' }) | null;
  endpoint: WorkloadEndpoint | null;
  renderError: string | null;
}

export type DiscoveryEvent =
  | { type: 'connected'; proxyId: string }
  | { type: 'disconnected'; proxyId: string }
  | { type: 'pushed'; proxyId: string; version: string; base: string | null; bytes: number; resources: number }
  | { type: 'ack'; proxyId: string; hash: string }
  | { type: 'nack'; proxyId: string; hash: string; reason: string }
  | { type: 'heartbeat'; proxyId: string };

export interface DiscoveryServer {
  /** Starts serving; port 0 picks a free port. Resolves with the base URL (`http://` or `https://`). */
  listen(port?: number, host?: string): Promise<{ url: string; port: number; host: string }>;
  close(): Promise<void>;
  /** Something the render depends on changed: debounced, then every proxy is re-rendered and pushed if its hash changed. */
  configChanged(reason: string): void;
  /** Replaces the ServiceEntry / WorkloadEntry endpoints (triggers a debounced push when they changed). */
  setStaticEndpoints(endpoints: WorkloadEndpoint[]): void;
  /** Registered plus static endpoints, sorted. */
  endpoints(): WorkloadEndpoint[];
  /** Per-proxy table (drift computed now). */
  status(): ProxyStatus[];
  /** One proxy, by exact id or unique suffix; undefined when unknown; throws on an ambiguous query. */
  findProxy(query: string): ProxyStatus | undefined;
  /** The proxy's current desired snapshot (as last rendered and pushed). */
  proxySnapshot(proxyId: string): ProxySnapshot | undefined;
  /** Heartbeat statistics of a cluster per mesh version, monotonic since the operator started. */
  versionStats(cluster: string): VersionStats[];
  /** Fires a pending debounced change now and waits until every queued push was sent. */
  flush(): Promise<void>;
  /** Answers `/debug/*` on another HTTP server (returns false when the path is not ours). */
  handleDebug(req: AnyRequest, res: AnyResponse): boolean;
  readonly events: EventEmitter<{ event: [DiscoveryEvent] }>;
  readonly metrics: DiscoveryMetrics;
}

interface PushRequest {
  reasons: string[];
  /** When the change that caused this push happened (for convergence time). */
  changeAt: number;
  full: boolean;
}

interface Connection {
  proxyId: string;
  res: AnyResponse;
  lastActivity: number;
  /** Version sent and not yet answered: the next push waits for its ACK/NACK (flow control). */
  inFlight: string | null;
  /** A push held back until the in-flight one is answered (or stale: the sweep releases it). */
  deferred: PushRequest | null;
  /** What the proxy holds, for deltas (null: nothing we know; next push is full). */
  base: HeldResources | null;
  /** How snapshots are cut into resources on this stream (2 when the proxy's hello offers it). */
  layout: ResourceLayout;
  closed: boolean;
}

/** A snapshot version and its resource groups (mostly shared with other proxies: kept per proxy by reference). */
interface HeldResources {
  hash: string;
  groups: readonly ResourceGroup[];
}

interface ProxyRecord extends ReplyRecord {
  identity: ProxyIdentity;
  proxyVersion: string;
  reportedMeshVersion: string;
  connection: Connection | null;
  connectedAt: number | null;
  disconnectedAt: number | null;
  desired: { snapshot: ProxySnapshot; split: SplitSnapshot } | null;
  /** The last snapshot sent to this proxy on any connection (a reconnect holding it gets deltas). */
  lastSent: HeldResources | null;
  /** Change time of the latest push, for convergence time; cleared at its ACK. */
  pushChangeAt: number | null;
  lastHeartbeat: number | null;
  stats: HeartbeatStat[];
  peerCertificate: CertificateInfo | null;
  reportedCertificate: CertificateInfo | null;
  endpoint: WorkloadEndpoint | null;
  renderError: string | null;
}

interface ChangeEvent {
  reasons: string[];
  at: number;
}

const MAX_REASONS = 20;

function mergeReasons(a: string[], b: string[]): string[] {
  const merged = [...new Set([...a, ...b])];
  return merged.length > MAX_REASONS ? merged.slice(merged.length - MAX_REASONS) : merged;
}

function iso(t: number | null): string | null {
  return t === null ? null : new Date(t).toISOString();
}

const NOTHING_REMOVED = Buffer.from(',"removed":[]}\n');

/** A snapshot message as chunks: its own head and tail around the shared `resources` bytes. */
function encodeSnapshotMessage(version: string, base: string | null, delta: EncodedDelta): Buffer[] {
  const head = Buffer.from(`{"v":${PROTOCOL_VERSION},"type":"snapshot","version":${JSON.stringify(version)},"base":${JSON.stringify(base)},"resources":`);
  const tail = delta.removed.length === 0 ? NOTHING_REMOVED : Buffer.from(`,"removed":${JSON.stringify(delta.removed)}}\n`);
  return [head, ...delta.chunks, tail];
}

/** Writes chunks as one batch (writev); false when the stream asks to wait for drain. */
function writeChunks(res: AnyResponse, chunks: Buffer[]): boolean {
  const out = res as unknown as NodeJS.WritableStream & { cork?: () => void; uncork?: () => void };
  out.cork?.();
  let flushed = true;
  for (const chunk of chunks) flushed = out.write(chunk);
  out.uncork?.();
  return flushed;
}

export function createDiscoveryServer(opts: DiscoveryServerOptions): DiscoveryServer {
  const log = (opts.logger ?? SILENT_LOGGER).child({ component: 'discovery' });
  const staleAfterMs = opts.staleAfterMs ?? 10_000;
  const endpointGraceMs = opts.endpointGraceMs ?? 30_000;
  const forgetAfterMs = opts.forgetAfterMs ?? 3_600_000;
  const maxConcurrent = opts.maxConcurrentPushes ?? 100;
  const metrics = createDiscoveryMetrics(opts.registry);
  const events = new EventEmitter<{ event: [DiscoveryEvent] }>();
  events.setMaxListeners(0);
  const proxies = new Map<string, ProxyRecord>();
  const registry = new EndpointRegistry();
  const stats = new VersionStatsAggregator();
  const queue = new PushQueue<string, PushRequest>((a, b) => ({
    reasons: mergeReasons(a.reasons, b.reasons),
    changeAt: Math.min(a.changeAt, b.changeAt),
    full: a.full || b.full,
  }));
  let inflight = 0;
  let idleWaiters: Array<() => void> = [];
  let closed = false;
  let transport: DualProtocolServer | null = null;
  let versionMismatchLogged = false;
  let verifyVersions = opts.verifyVersions ?? false;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  const restartHoldMs = opts.restartHoldMs ?? 0;
  const persistEveryMs = opts.persistEveryMs ?? 1_000;
  const sweepIntervalMs =
    opts.sweepIntervalMs ??
    Math.min(1_000, Math.max(10, Math.floor(Math.min(endpointGraceMs, staleAfterMs, idleTimeoutMs || Infinity, restartHoldMs || Infinity) / 4)));
  // One timer for every deadline: thousands of proxies must not hold thousands of timers.
  let sweepTimer: NodeJS.Timeout | null = null;
  let holdUntil = 0;
  const held = new Set<string>();
  let persistedRevision = 0;
  let lastPersistAt = 0;
  let persisting: Promise<void> | null = null;

  function releaseHeld(): void {
    if (closed || held.size === 0) return;
    log.info({ proxies: held.size }, 'restart hold over: syncing the proxies that kept their snapshots');
    for (const id of held) if (proxies.get(id)?.connection) queue.enqueue(id, { reasons: ['restart-hold-end'], changeAt: Date.now(), full: false });
    held.clear();
    pump();
  }

  function closeIdle(conn: Connection, now: number): void {
    log.warn({ proxy: conn.proxyId, idleMs: now - conn.lastActivity }, 'no message from the proxy within the idle timeout; closing its stream');
    onDisconnect(conn);
    (conn.res as { destroy?: () => void }).destroy?.();
    (conn.res as { stream?: { close?: () => void } }).stream?.close?.();
  }

  /** Every deadline, checked by one periodic timer (see sweepIntervalMs). */
  function sweep(): void {
    if (closed) return;
    const now = Date.now();
    if (held.size > 0 && now >= holdUntil) releaseHeld();
    for (const [id, record] of proxies) {
      const conn = record.connection;
      if (conn) {
        if (idleTimeoutMs > 0 && now - conn.lastActivity > idleTimeoutMs) closeIdle(conn, now);
        else if (conn.deferred && (record.sentAt === null || now - record.sentAt >= staleAfterMs)) releaseDeferred(conn);
        continue;
      }
      if (record.disconnectedAt === null) continue;
      const away = now - record.disconnectedAt;
      if (record.endpoint && away >= endpointGraceMs) {
        record.endpoint = null;
        if (registry.unregister(id)) triggerChange(`endpoint removed ${id}`);
      }
      if (away >= Math.max(forgetAfterMs, endpointGraceMs + 1)) proxies.delete(id);
    }
    for (const id of registry.expire(now)) {
      log.info({ proxy: id }, 'restored endpoint removed: its proxy did not reconnect within the grace period');
      triggerChange(`restored endpoint expired ${id}`);
    }
    metrics.restoredEndpoints.set(registry.provisionalCount);
    if (registry.revision !== persistedRevision && now - lastPersistAt >= persistEveryMs) void persist();
  }

  /** Writes the registry file if it changed since the last write (one write at a time). */
  function persist(): Promise<void> {
    const file = opts.endpointStateFile;
    if (!file || persisting) return persisting ?? Promise.resolve();
    const revision = registry.revision;
    if (revision === persistedRevision) return Promise.resolve();
    lastPersistAt = Date.now();
    persisting = saveEndpointRegistryFile(file, registry.registeredEntries())
      .then(() => {
        persistedRevision = revision;
      })
      .catch((err: unknown) => log.error({ err, file }, 'could not persist the endpoint registry'))
      .finally(() => {
        persisting = null;
      });
    return persisting;
  }

  /** Brings back the registry a previous run persisted; true when it did (the restart hold is then not needed). */
  async function restoreRegistry(): Promise<boolean> {
    const file = opts.endpointStateFile;
    if (!file) return false;
    const loaded = await loadEndpointRegistryFile(file);
    if (!loaded.found) {
      if (loaded.error) log.warn({ file, error: loaded.error }, 'persisted endpoint registry unreadable; starting from an empty one');
      return false;
    }
    const restored = registry.restore(loaded.endpoints, Date.now() + endpointGraceMs);
    persistedRevision = registry.revision;
    metrics.restoredEndpoints.set(registry.provisionalCount);
    log.info({ file, endpoints: restored, savedAt: loaded.savedAt, graceMs: endpointGraceMs }, 'endpoint registry restored; entries expire unless their proxy reconnects');
    return true;
  }

  const debouncer: Debouncer<ChangeEvent> = createDebouncer<ChangeEvent>({
    afterMs: opts.debounceMs ?? 100,
    maxMs: opts.debounceMaxMs ?? 10_000,
    leadingMs: Math.min(opts.debounceLeadingMs ?? 10, opts.debounceMs ?? 100),
    merge: (a, b) => ({ reasons: mergeReasons(a.reasons, b.reasons), at: Math.min(a.at, b.at) }),
    push: async (change) => {
      log.debug({ reasons: change.reasons }, 'pushing configuration change');
      for (const [id, record] of proxies) {
        if (record.connection) queue.enqueue(id, { reasons: change.reasons, changeAt: change.at, full: false });
      }
      pump();
      await waitIdle();
    },
    onError: (err) => log.error({ err }, 'configuration push failed'),
  });

  function emit(event: DiscoveryEvent): void {
    events.emit('event', event);
  }

  function waitIdle(): Promise<void> {
    if (queue.isIdle() && inflight === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  }

  function pump(): void {
    while (inflight < maxConcurrent) {
      const job = queue.dequeue();
      if (!job) break;
      inflight++;
      void pushToProxy(job.key, job.request)
        .catch((err) => log.error({ err, proxy: job.key }, 'push failed'))
        .finally(() => {
          inflight--;
          queue.markDone(job.key);
          pump();
          if (inflight === 0 && queue.isIdle()) {
            const waiters = idleWaiters;
            idleWaiters = [];
            for (const resolve of waiters) resolve();
          }
        });
    }
  }

  async function render(record: ProxyRecord, layout: ResourceLayout): Promise<{ snapshot: ProxySnapshot; split: SplitSnapshot } | null> {
    let snapshot: ProxySnapshot;
    try {
      snapshot = await opts.render(record.identity, registry.list());
    } catch (err) {
      metrics.renderErrors.inc();
      record.renderError = err instanceof Error ? err.message : String(err);
      log.error({ err, proxy: record.identity.id }, 'rendering the proxy snapshot failed; it keeps its current one');
      return null;
    }
    record.renderError = null;
    if (verifyVersions) {
      const computed = snapshotContentHash(snapshot);
      if (snapshot.version !== computed) {
        if (!versionMismatchLogged) {
          versionMismatchLogged = true;
          log.error({ proxy: record.identity.id, rendered: snapshot.version, computed }, 'rendered snapshot version is not its content hash; using the content hash');
        }
        snapshot = { ...snapshot, version: computed };
      }
    }
    if (record.desired && record.desired.snapshot.version === snapshot.version && record.desired.split.layout === layout) return record.desired;
    return { snapshot, split: splitSnapshot(snapshot, layout) };
  }

  function mergePush(a: PushRequest, b: PushRequest): PushRequest {
    return { reasons: mergeReasons(a.reasons, b.reasons), changeAt: Math.min(a.changeAt, b.changeAt), full: a.full || b.full };
  }

  /** Releases a push held for flow control (the in-flight version was answered, or is stale). */
  function releaseDeferred(conn: Connection): void {
    const deferred = conn.deferred;
    conn.deferred = null;
    if (deferred && !conn.closed) {
      queue.enqueue(conn.proxyId, deferred);
      pump();
    }
  }

  async function pushToProxy(proxyId: string, request: PushRequest): Promise<void> {
    const record = proxies.get(proxyId);
    if (!record || !record.connection) return;
    if (held.has(proxyId)) return; // it keeps its snapshot until the restart hold ends (releaseHeld)
    const pending = record.connection;
    // Flow control: a proxy still applying the last push gets the newest state once it answers,
    // not every intermediate one (slow proxies in a cold start would otherwise queue many).
    if (pending.inFlight !== null && !request.full && record.sentAt !== null && Date.now() - record.sentAt < staleAfterMs) {
      pending.deferred = pending.deferred ? mergePush(pending.deferred, request) : request;
      return;
    }
    const started = performance.now();
    const desired = await render(record, pending.layout);
    const conn = record.connection;
    if (!desired || !conn || conn.closed) return;
    record.desired = desired;
    const version = desired.snapshot.version;
    if (request.full) conn.base = null;
    if (conn.base && conn.base.hash === version) return; // the proxy holds it already: nothing to send
    if (!request.full && !conn.base && record.ackedHash === version) {
      // It reconnected running exactly this (e.g. after an operator restart): no resend, and deltas build on it.
      conn.base = { hash: version, groups: desired.split.groups };
      record.lastSent = conn.base;
      return;
    }
    const delta = encodeDelta(conn.base?.groups ?? null, desired.split.groups);
    const base = conn.base?.hash ?? null;
    const chunks = encodeSnapshotMessage(version, base, delta);
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    record.sentHash = version;
    record.sentAt = Date.now();
    record.pushChangeAt = request.changeAt;
    conn.base = { hash: version, groups: desired.split.groups };
    conn.inFlight = version;
    record.lastSent = conn.base;
    const flushed = writeChunks(conn.res, chunks);
    metrics.pushes.inc({ type: base === null ? 'full' : 'delta' });
    metrics.pushBytes.inc(bytes);
    emit({ type: 'pushed', proxyId, version, base, bytes, resources: delta.changed + delta.removed.length });
    if (!flushed && !conn.closed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          conn.res.off('drain', done);
          conn.res.off('close', done);
          resolve();
        };
        conn.res.on('drain', done);
        conn.res.on('close', done);
      });
    }
    metrics.pushSeconds.observe((performance.now() - started) / 1000);
  }

  function triggerChange(reason: string): void {
    if (!closed) debouncer.trigger({ reasons: [reason], at: Date.now() });
  }

  function registerEndpoint(record: ProxyRecord, hello: HelloMessage): void {
    if (!hello.endpoint) {
      // A proxy that comes back without an endpoint has none (a restored or earlier one is stale).
      record.endpoint = null;
      if (registry.unregister(record.identity.id)) triggerChange(`endpoint removed ${record.identity.id}`);
      return;
    }
    const endpoint: WorkloadEndpoint = {
      service: record.identity.service ?? record.identity.workload,
      namespace: record.identity.namespace,
      address: hello.endpoint.address,
      port: hello.endpoint.port,
      labels: hello.endpoint.labels ?? record.identity.labels,
      serviceAccount: record.identity.serviceAccount,
      workload: record.identity.workload,
      tlsMode: 'istio',
      proxyId: record.identity.id,
    };
    record.endpoint = endpoint;
    if (registry.register(record.identity.id, endpoint)) triggerChange(`endpoint ${record.identity.id}`);
  }

  function newRecord(hello: HelloMessage): ProxyRecord {
    return {
      identity: hello.identity,
      proxyVersion: hello.proxyVersion,
      reportedMeshVersion: hello.meshVersion,
      connection: null,
      connectedAt: null,
      disconnectedAt: null,
      desired: null,
      lastSent: null,
      pushChangeAt: null,
      lastHeartbeat: null,
      stats: [],
      peerCertificate: null,
      reportedCertificate: null,
      endpoint: null,
      renderError: null,
      sentHash: null,
      sentAt: null,
      ackedHash: null,
      ackedAt: null,
      lastNack: null,
    };
  }

  function sendError(res: AnyResponse, code: ErrorMessage['code'], message: string): void {
    try {
      res.end(encodeMessage({ v: PROTOCOL_VERSION, type: 'error', code, message }));
    } catch {
      // the stream is already gone
    }
  }

  function onHello(conn: Connection, hello: HelloMessage, peer: CertificateInfo | null): void {
    const id = hello.identity.id;
    let record = proxies.get(id);
    if (record?.connection && record.connection !== conn) {
      const old = record.connection;
      old.closed = true;
      sendError(old.res, 'replaced', 'a newer stream for this proxy id replaced this one');
    }
    if (!record) {
      record = newRecord(hello);
      proxies.set(id, record);
    }
    record.identity = hello.identity;
    record.proxyVersion = hello.proxyVersion;
    record.reportedMeshVersion = hello.meshVersion;
    record.connection = conn;
    record.connectedAt = Date.now();
    record.peerCertificate = peer;
    record.reportedCertificate = hello.certificate ?? null;
    const classified = classifyReply(record, hello, Date.now());
    Object.assign(record, classified.record);
    metrics.replies.inc({ kind: classified.kind });
    // Deltas may build on what the proxy runs only when we know that snapshot's resources.
    conn.base = record.lastSent && record.lastSent.hash === hello.runningHash ? record.lastSent : null;
    if (!conn.base && record.desired && record.desired.snapshot.version === hello.runningHash) {
      conn.base = { hash: record.desired.snapshot.version, groups: splitSnapshot(record.desired.snapshot, conn.layout).groups };
    }
    metrics.connectedProxies.inc();
    log.info({ proxy: id, runningHash: hello.runningHash, proxyVersion: hello.proxyVersion }, 'proxy connected');
    emit({ type: 'connected', proxyId: id });
    registerEndpoint(record, hello);
    if (hello.runningHash && Date.now() < holdUntil) held.add(id);
    // A burst of connects (a cold start, an operator restart) registers a burst of endpoints: a proxy
    // that connects while a debounced push is pending gets its first snapshot with that push, built
    // on the registry the burst leaves, instead of one now and another per registration after it.
    if (debouncer.pending) return;
    queue.enqueue(id, { reasons: ['connect'], changeAt: Date.now(), full: false });
    pump();
  }

  function onReply(conn: Connection, msg: ProxyMessage): void {
    const record = proxies.get(conn.proxyId);
    if (!record || record.connection !== conn) return;
    const now = Date.now();
    conn.lastActivity = now;
    switch (msg.type) {
      case 'hello':
        throw new ProtocolError('hello may only be the first message');
      case 'heartbeat':
        record.lastHeartbeat = now;
        record.stats = msg.stats;
        if (msg.certificate) record.reportedCertificate = msg.certificate;
        stats.record(conn.proxyId, record.identity.cluster, msg.stats);
        emit({ type: 'heartbeat', proxyId: conn.proxyId });
        return;
      case 'ack':
      case 'nack': {
        const classified = classifyReply(record, msg, now);
        Object.assign(record, classified.record);
        metrics.replies.inc({ kind: classified.kind });
        if (classified.kind !== 'stale' && conn.inFlight === msg.hash) {
          conn.inFlight = null;
          if (!classified.resync) releaseDeferred(conn);
        }
        if (classified.kind === 'ack') {
          if (record.pushChangeAt !== null) metrics.convergenceSeconds.observe((now - record.pushChangeAt) / 1000);
          record.pushChangeAt = null;
          emit({ type: 'ack', proxyId: conn.proxyId, hash: msg.hash });
        } else if (classified.kind === 'nack' && msg.type === 'nack') {
          if (classified.resync) {
            log.info({ proxy: conn.proxyId, reason: msg.reason }, 'proxy asked for a full snapshot');
            const desired = record.desired?.snapshot;
            if (!verifyVersions && desired && desired.version === msg.hash && snapshotContentHash(desired) !== desired.version) {
              // The renderer broke its contract: from now on every version is computed here.
              verifyVersions = true;
              record.desired = null;
              log.error({ proxy: conn.proxyId, rendered: desired.version }, 'rendered snapshot version is not its content hash; verifying every snapshot from now on');
            }
            conn.base = null;
            const deferred = conn.deferred;
            conn.deferred = null;
            const resync: PushRequest = { reasons: ['resync'], changeAt: record.pushChangeAt ?? now, full: true };
            queue.enqueue(conn.proxyId, deferred ? mergePush(deferred, resync) : resync);
            pump();
          } else {
            log.warn({ proxy: conn.proxyId, hash: msg.hash, reason: msg.reason }, 'proxy rejected its snapshot');
            emit({ type: 'nack', proxyId: conn.proxyId, hash: msg.hash, reason: msg.reason });
          }
        }
        return;
      }
    }
  }

  function onDisconnect(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.deferred = null;
    const record = proxies.get(conn.proxyId);
    if (!record || record.connection !== conn) return;
    record.connection = null;
    record.disconnectedAt = Date.now();
    metrics.connectedProxies.dec();
    queue.remove(conn.proxyId);
    stats.forget(conn.proxyId);
    log.info({ proxy: conn.proxyId }, 'proxy disconnected');
    emit({ type: 'disconnected', proxyId: conn.proxyId });
    // Its endpoint stays for endpointGraceMs and its record for forgetAfterMs: the sweep removes them.
  }

  function peerCertificateOf(req: AnyRequest): CertificateInfo | null {
    const socket = req.socket as TLSSocket | undefined;
    if (!socket || typeof socket.getPeerCertificate !== 'function') return null;
    try {
      return certificateInfo(socket.getPeerCertificate());
    } catch {
      return null;
    }
  }

  function handleStream(req: AnyRequest, res: AnyResponse): void {
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'cache-control': 'no-store' });
    // Headers go out now so the proxy knows it is connected before any snapshot is due.
    (res as { flushHeaders?: () => void }).flushHeaders?.();
    const decoder = new LineDecoder();
    let conn: Connection | null = null;
    let authenticating = false;
    const backlog: ProxyMessage[] = [];
    const peer = peerCertificateOf(req);

    const fail = (code: ErrorMessage['code'], message: string): void => {
      log.warn({ code, message, remote: req.socket?.remoteAddress }, 'discovery stream refused');
      if (conn) onDisconnect(conn);
      sendError(res, code, message);
    };

    const onMessage = (msg: ProxyMessage): void => {
      if (authenticating) {
        backlog.push(msg);
        return;
      }
      if (!conn) {
        if (msg.type !== 'hello') throw new ProtocolError('the first message must be hello');
        const hello = msg;
        authenticating = true;
        void Promise.resolve(opts.authenticate ? opts.authenticate({ hello, peerCertificate: peer, headers: req.headers, remoteAddress: req.socket?.remoteAddress }) : { ok: true as const })
          .then((result) => {
            authenticating = false;
            if (closed || res.writableEnded || res.destroyed) return;
            if (!result.ok) return fail('unauthenticated', result.reason);
            const layout: ResourceLayout = hello.features?.includes(RESOURCES_V2_FEATURE) ? 2 : 1;
            conn = { proxyId: hello.identity.id, res, base: null, layout, closed: false, lastActivity: Date.now(), inFlight: null, deferred: null };
            onHello(conn, hello, peer);
            for (const queued of backlog.splice(0)) onMessage(queued);
          })
          .catch((err) => {
            authenticating = false;
            fail('unauthenticated', `authentication failed: ${(err as Error).message}`);
          });
        return;
      }
      onReply(conn, msg);
    };

    req.on('data', (chunk: Buffer) => {
      try {
        for (const line of decoder.push(chunk)) onMessage(decodeProxyMessage(line));
      } catch (err) {
        if (err instanceof ProtocolError) fail(/unsupported protocol version/.test(err.message) ? 'unsupported-version' : 'bad-request', err.message);
        else throw err;
      }
    });
    const closeStream = (): void => {
      if (conn) onDisconnect(conn);
    };
    req.on('end', () => {
      closeStream();
      if (!res.writableEnded) res.end();
    });
    req.on('error', closeStream);
    res.on('close', closeStream);
  }

  function handleRequest(req: AnyRequest, res: AnyResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === STREAM_PATH && req.method === 'POST') return handleStream(req, res);
    if (server.handleDebug(req, res)) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `no route for ${req.method} ${path}` }));
  }

  function toStatus(record: ProxyRecord, now: number): ProxyStatus {
    const running = record.desired && record.desired.snapshot.version === record.ackedHash ? record.desired.snapshot.meshVersion : record.reportedMeshVersion;
    const certificate = record.reportedCertificate
      ? { ...record.reportedCertificate, source: 'proxy-report' as const }
      : record.peerCertificate
        ? { ...record.peerCertificate, source: 'mtls-peer' as const }
        : null;
    return {
      id: record.identity.id,
      cluster: record.identity.cluster,
      namespace: record.identity.namespace,
      workload: record.identity.workload,
      service: record.identity.service,
      mode: record.identity.mode,
      identity: record.identity,
      connected: record.connection !== null,
      sync: computeDrift(
        { ...record, connected: record.connection !== null, desiredHash: record.desired?.snapshot.version ?? null },
        now,
        staleAfterMs,
      ),
      proxyVersion: record.proxyVersion,
      meshVersion: running,
      desiredHash: record.desired?.snapshot.version ?? null,
      sentHash: record.sentHash,
      ackedHash: record.ackedHash,
      lastNack: record.lastNack ? { ...record.lastNack, at: iso(record.lastNack.at) as string } : null,
      lastHeartbeat: iso(record.lastHeartbeat),
      connectedAt: iso(record.connectedAt),
      disconnectedAt: iso(record.disconnectedAt),
      stats: record.stats,
      certificate,
      endpoint: record.endpoint,
      renderError: record.renderError,
    };
  }

  const server: DiscoveryServer = {
    events,
    metrics,
    async listen(port = 0, host = '127.0.0.1') {
      if (transport) throw new Error('discovery server is already listening');
      const restored = await restoreRegistry();
      holdUntil = restartHoldMs > 0 && !restored ? Date.now() + restartHoldMs : 0;
      transport = createDualProtocolServer(handleRequest, opts.tls);
      sweepTimer = setInterval(sweep, sweepIntervalMs);
      sweepTimer.unref();
      const address = await transport.listen(port, host);
      const scheme = opts.tls ? 'https' : 'http';
      const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      log.info({ port: address.port, host: address.address, tls: Boolean(opts.tls) }, 'discovery server listening');
      return { url: `${scheme}://${urlHost}:${address.port}`, port: address.port, host: address.address };
    },
    async close() {
      closed = true;
      debouncer.close();
      if (sweepTimer) clearInterval(sweepTimer);
      sweepTimer = null;
      // The last registry, for the next run (a kill -9 leaves the one the sweep wrote last).
      await persisting;
      await persist();
      for (const record of proxies.values()) {
        if (record.connection) {
          record.connection.closed = true;
          record.connection = null;
          metrics.connectedProxies.dec();
        }
      }
      if (transport) await transport.close();
      transport = null;
    },
    configChanged(reason: string) {
      triggerChange(reason);
    },
    setStaticEndpoints(list: WorkloadEndpoint[]) {
      if (registry.setStatic(list)) triggerChange('static endpoints');
    },
    endpoints() {
      return registry.list();
    },
    status() {
      const now = Date.now();
      return [...proxies.values()].map((r) => toStatus(r, now)).sort((a, b) => a.id.localeCompare(b.id));
    },
    findProxy(query: string) {
      const exact = proxies.get(query);
      if (exact) return toStatus(exact, Date.now());
      const matches = [...proxies.keys()].filter((id) => id.endsWith(`/${query}`) || id.split('/').slice(2).join('.') === query);
      if (matches.length > 1) throw new Error(`proxy "${query}" is ambiguous: ${matches.sort().join(', ')}`);
      return matches.length === 1 ? toStatus(proxies.get(matches[0]) as ProxyRecord, Date.now()) : undefined;
    },
    proxySnapshot(proxyId: string) {
      return proxies.get(proxyId)?.desired?.snapshot;
    },
    versionStats(cluster: string) {
      const perVersion = new Map<string, number>();
      for (const record of proxies.values()) {
        if (record.identity.cluster !== cluster || !record.connection) continue;
        const version = toStatus(record, Date.now()).meshVersion;
        perVersion.set(version, (perVersion.get(version) ?? 0) + 1);
      }
      return stats.stats(cluster, perVersion);
    },
    async flush() {
      await debouncer.flush();
      pump();
      await waitIdle();
    },
    handleDebug(req: AnyRequest, res: AnyResponse) {
      return handleDebugRequest(server, req, res);
    },
  };
  return server;
}
