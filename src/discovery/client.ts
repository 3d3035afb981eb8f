import { EventEmitter } from 'node:events';
import { connect as http2connect } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { SILENT_LOGGER } from './silent-logger.js';
import type { ProxyIdentity, ProxySnapshot } from '../mesh/snapshot.js';
import {
  CONTENT_TYPE,
  LineDecoder,
  MAX_RECONNECT_BACKOFF_MS,
  NACK_BASE_MISMATCH,
  NACK_HASH_MISMATCH,
  PROTOCOL_VERSION,
  STREAM_PATH,
  decodeOperatorMessage,
  encodeMessage,
} from './protocol.js';
import type { CertificateInfo, HeartbeatStat, OperatorMessage, ProxyMessage, SnapshotMessage, WorkloadEndpointRegistration } from './protocol.js';
import { RESOURCES_V2_FEATURE, assembleSnapshot, deepFreeze, freezeAssembled, snapshotContentHash, splitResources } from './resources.js';
import type { ContentHashMemo } from './resources.js';

export type ApplyResult = { ok: true } | { ok: false; error: string };

export interface ClientTlsOptions {
  /** CA that signed the operator's serving certificate. */
  ca: string | Buffer;
  /** Workload certificate chain and key for mTLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the operator certificate against (default: the URL host). */
  servername?: string;
}

export interface DiscoveryClientOptions {
  /** Operator discovery URL: `http://host:port` (h2c) or `https://host:port`. */
  url: string;
  identity: ProxyIdentity;
  /** Trellis version of this proxy binary (default 0.1.0). */
  proxyVersion?: string;
  /** Mesh version the proxy was started for (reported in hello; default: its initial snapshot's, else ""). */
  meshVersion?: string;
  /** The workload endpoint to register in the service registry. */
  endpoint?: WorkloadEndpointRegistration;
  /** TLS material; a function is called at every (re)connect, so rotated certificates are picked up. */
  tls?: ClientTlsOptions | (() => ClientTlsOptions);
  /** The snapshot the proxy already serves (its last-good from disk): reported as runningHash, used as delta base. */
  initialSnapshot?: ProxySnapshot | null;
  /** Applies a verified snapshot; its result becomes the ACK or NACK. */
  apply: (snapshot: ProxySnapshot) => ApplyResult | Promise<ApplyResult>;
  /** Cumulative request statistics per mesh version, sent with every heartbeat. */
  stats?: () => HeartbeatStat[];
  /** Certificate the proxy currently serves with (reported in hello and heartbeats, for `proxy-config secret`). */
  certificate?: () => CertificateInfo | undefined;
  /** Heartbeat period (default 10 s). */
  heartbeatMs?: number;
  /** Reconnect backoff: exponential from initialMs (default 200) up to maxMs (default 5000), with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  logger?: Logger;
}

export interface DiscoveryClientCounters {
  connects: number;
  snapshots: number;
  fullSnapshots: number;
  bytesReceived: number;
  acks: number;
  nacks: number;
}

export type DiscoveryClientEvent =
  | { type: 'connected' }
  | { type: 'disconnected'; reason: string }
  | { type: 'applied'; version: string }
  | { type: 'rejected'; version: string; reason: string }
  | { type: 'error-message'; code: string; message: string };

export interface DiscoveryClient {
  /** Closes the stream and stops reconnecting; the running snapshot is kept. */
  stop(): Promise<void>;
  /** Sends a heartbeat now (tests; otherwise every heartbeatMs). */
  sendHeartbeat(): void;
  readonly connected: boolean;
  /** Version of the snapshot applied last (null before the first). */
  readonly runningHash: string | null;
  readonly running: ProxySnapshot | null;
  readonly counters: DiscoveryClientCounters;
  readonly events: EventEmitter<{ event: [DiscoveryClientEvent] }>;
}

export interface HeldState {
  version: string;
  resources: Map<string, unknown>;
  /** Hash states of the snapshot last verified (a delta re-hashes from its first changed member only). */
  hashMemo?: ContentHashMemo;
}

/** Reconnect delay for attempt n (0-based): half of the exponential step fixed, half random. */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return step / 2 + random() * (step / 2);
}

/**
 * Applies one snapshot message to what the client holds: the reassembled and verified snapshot,
 * or the NACK reason (base-mismatch / hash-mismatch ask the operator for a full resend).
 *
 * A delta is applied to `held` in place (a copy of every held resource per delta was most of the
 * garbage a client made): on success `held` is used up (its version no longer matches any delta),
 * on failure it is put back as it was.
 */
export function reassemble(held: HeldState | null, msg: SnapshotMessage): { ok: true; state: HeldState; snapshot: ProxySnapshot } | { ok: false; reason: string } {
  if (msg.base !== null && (held === null || msg.base !== held.version)) return { ok: false, reason: NACK_BASE_MISMATCH };
  const resources = msg.base === null || held === null ? new Map<string, unknown>() : held.resources;
  const undo: Array<[string, unknown]> = [];
  const change = (name: string, value: unknown | typeof ABSENT): void => {
    if (resources === held?.resources) undo.push([name, resources.has(name) ? resources.get(name) : ABSENT]);
    if (value === ABSENT) resources.delete(name);
    else resources.set(name, value);
  };
  const fail = (reason: string): { ok: false; reason: string } => {
    for (let i = undo.length - 1; i >= 0; i--) {
      const [name, value] = undo[i];
      if (value === ABSENT) resources.delete(name);
      else resources.set(name, value);
    }
    return { ok: false, reason };
  };
  for (const name of msg.removed) change(name, ABSENT);
  // Received resources are frozen: they are shared by every snapshot until replaced, and the content
  // hash and the proxy's validation keep their results per resource object.
  for (const name of Object.keys(msg.resources)) change(name, deepFreeze(msg.resources[name]));
  let snapshot: ProxySnapshot;
  try {
    snapshot = freezeAssembled(assembleSnapshot(msg.version, resources));
  } catch (err) {
    return fail(`${NACK_HASH_MISMATCH}: ${(err as Error).message}`);
  }
  const hashMemo: ContentHashMemo = { last: held?.hashMemo?.last };
  const computed = snapshotContentHash(snapshot, hashMemo);
  if (computed !== msg.version) return fail(`${NACK_HASH_MISMATCH}: content hash ${computed} is not ${msg.version}`);
  if (held !== null && resources === held.resources) held.version = USED_UP;
  return { ok: true, state: { version: msg.version, resources, hashMemo }, snapshot };
}

const ABSENT = Symbol('absent');
/** The version of a held state whose resources moved on to the next one: no delta names it. */
const USED_UP = '';

function heldFrom(snapshot: ProxySnapshot | null): HeldState | null {
  if (!snapshot) return null;
  // The layout this client asks for in its hello (an operator that ignores it makes the first delta a hash mismatch: a full resend).
  const resources = splitResources(snapshot, 2);
  for (const value of resources.values()) deepFreeze(value);
  return { version: snapshot.version, resources };
}

export function startDiscoveryClient(opts: DiscoveryClientOptions): DiscoveryClient {
  const log = (opts.logger ?? SILENT_LOGGER).child({ component: 'discovery-client', proxy: opts.identity.id });
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  const initialMs = opts.backoff?.initialMs ?? 200;
  const maxMs = opts.backoff?.maxMs ?? MAX_RECONNECT_BACKOFF_MS;
  const events = new EventEmitter<{ event: [DiscoveryClientEvent] }>();
  const counters: DiscoveryClientCounters = { connects: 0, snapshots: 0, fullSnapshots: 0, bytesReceived: 0, acks: 0, nacks: 0 };
  let running: ProxySnapshot | null = opts.initialSnapshot ?? null;
  let held: HeldState | null = null;
  let session: ClientHttp2Session | null = null;
  let stream: ClientHttp2Stream | null = null;
  let connected = false;
  let stopped = false;
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let heartbeatTimer: NodeJS.Timeout | null = null;
  // Snapshots are handled strictly in order, one at a time.
  let work: Promise<void> = Promise.resolve();

  function send(message: ProxyMessage): void {
    if (stream && !stream.closed && !stream.destroyed) stream.write(encodeMessage(message));
  }

  function sendHeartbeat(): void {
    send({
      v: PROTOCOL_VERSION,
      type: 'heartbeat',
      stats: opts.stats?.() ?? [],
      runningHash: running?.version ?? null,
      certificate: opts.certificate?.(),
    });
  }

  async function handleSnapshot(msg: SnapshotMessage): Promise<void> {
    counters.snapshots++;
    if (msg.base === null) counters.fullSnapshots++;
    const result = reassemble(held, msg);
    if (!result.ok) {
      counters.nacks++;
      log.warn({ version: msg.version, base: msg.base, reason: result.reason }, 'snapshot could not be reassembled; asking for a full one');
      send({ v: PROTOCOL_VERSION, type: 'nack', hash: msg.version, reason: result.reason });
      return;
    }
    held = result.state;
    let applied: ApplyResult;
    try {
      applied = await opts.apply(result.snapshot);
    } catch (err) {
      applied = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    if (applied.ok) {
      running = result.snapshot;
      counters.acks++;
      send({ v: PROTOCOL_VERSION, type: 'ack', hash: msg.version });
      events.emit('event', { type: 'applied', version: msg.version });
    } else {
      counters.nacks++;
      log.warn({ version: msg.version, error: applied.error }, 'snapshot rejected; keeping the running one');
      send({ v: PROTOCOL_VERSION, type: 'nack', hash: msg.version, reason: applied.error });
      events.emit('event', { type: 'rejected', version: msg.version, reason: applied.error });
    }
  }

  function onMessage(msg: OperatorMessage): void {
    if (msg.type === 'error') {
      log.warn({ code: msg.code, message: msg.message }, 'operator closed the stream');
      events.emit('event', { type: 'error-message', code: msg.code, message: msg.message });
      return;
    }
    work = work.then(() => handleSnapshot(msg)).catch((err) => log.error({ err }, 'snapshot handling failed'));
  }

  function disconnect(reason: string): void {
    if (heartbeatTimer) clearInterval(heartbeatTimer);
    heartbeatTimer = null;
    const s = session;
    session = null;
    stream = null;
    if (s && !s.destroyed) s.destroy();
    if (connected) {
      connected = false;
      log.info({ reason }, 'discovery stream lost; serving the last snapshot');
      events.emit('event', { type: 'disconnected', reason });
    }
    if (!stopped && !reconnectTimer) {
      const delay = backoffDelayMs(attempt++, initialMs, maxMs);
      reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        connect();
      }, delay);
      reconnectTimer.unref();
    }
  }

  function connect(): void {
    if (stopped) return;
    const tls = typeof opts.tls === 'function' ? opts.tls() : opts.tls;
    let s: ClientHttp2Session;
    try {
      s = http2connect(opts.url, {
        ...(tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.servername } : {}),
        settings: { initialWindowSize: 4 * 1024 * 1024 },
      });
    } catch (err) {
      disconnect(`connect failed: ${(err as Error).message}`);
      return;
    }
    session = s;
    s.on('error', (err) => {
      if (session === s) disconnect(err.message);
    });
    s.on('close', () => {
      if (session === s) disconnect('session closed');
    });
    const req = s.request({ ':method': 'POST', ':path': STREAM_PATH, 'content-type': CONTENT_TYPE }, { endStream: false });
    stream = req;
    // A new stream starts from what the proxy runs: the operator sends deltas against that.
    held = heldFrom(running);
    const decoder = new LineDecoder();
    req.on('response', (headers) => {
      const status = Number(headers[':status']);
      if (status !== 200) {
        disconnect(`operator answered HTTP ${status}`);
        return;
      }
      connected = true;
      attempt = 0;
      counters.connects++;
      log.info({ url: opts.url }, 'discovery stream open');
      events.emit('event', { type: 'connected' });
      heartbeatTimer = setInterval(sendHeartbeat, heartbeatMs);
      heartbeatTimer.unref();
    });
    req.on('data', (chunk: Buffer) => {
      counters.bytesReceived += chunk.length;
      try {
        for (const line of decoder.push(chunk)) onMessage(decodeOperatorMessage(line));
      } catch (err) {
        log.error({ err }, 'operator sent an invalid message');
        disconnect(`protocol error: ${(err as Error).message}`);
      }
    });
    req.on('end', () => {
      if (session === s) disconnect('stream ended');
    });
    req.on('error', (err) => {
      if (session === s) disconnect(err.message);
    });
    send({
      v: PROTOCOL_VERSION,
      type: 'hello',
      identity: opts.identity,
      proxyVersion: opts.proxyVersion ?? '0.1.0',
      meshVersion: opts.meshVersion ?? running?.meshVersion ?? '',
      runningHash: running?.version ?? null,
      endpoint: opts.endpoint,
      certificate: opts.certificate?.(),
      features: [RESOURCES_V2_FEATURE],
    });
  }

  connect();

  return {
    async stop() {
      stopped = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      disconnect('stopped');
      await work;
    },
    sendHeartbeat,
    get connected() {
      return connected;
    },
    get runningHash() {
      return running?.version ?? null;
    },
    get running() {
      return running;
    },
    counters,
    events,
  };
}
