import type { ProxyIdentity } from '../mesh/snapshot.js';

/**
 * The Trellis discovery protocol: one long-lived HTTP/2 stream per proxy (`POST STREAM_PATH`),
 * carrying JSON lines in both directions. Every message has `v` (PROTOCOL_VERSION) and `type`.
 *
 * proxy → operator: hello (first message), ack, nack, heartbeat.
 * operator → proxy: snapshot (a delta against `base`, or full when base is null), error (then close).
 */
export const PROTOCOL_VERSION = 1;
export const STREAM_PATH = '/trellis.discovery.v1/stream';
export const CONTENT_TYPE = 'application/x-ndjson';
/** A line longer than this is refused (a snapshot of tens of thousands of endpoints stays far below). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** NACK reason the client sends when a delta's base is not what it holds (the server then sends a full snapshot). */
export const NACK_BASE_MISMATCH = 'base-mismatch';
/** A proxy's longest wait between reconnect attempts (its default backoff cap); the operator's restart hold outlasts it. */
export const MAX_RECONNECT_BACKOFF_MS = 5_000;
/** NACK reason when the reassembled snapshot's content hash differs from the announced version. */
export const NACK_HASH_MISMATCH = 'hash-mismatch';

export interface WorkloadEndpointRegistration {
  address: string;
  port: number;
  labels?: Record<string, string>;
}

/** Per-mesh-version request statistics, cumulative since the proxy started (like Prometheus counters). */
export interface HeartbeatStat {
  meshVersion: string;
  requests: number;
  errors5xx: number;
  /** Upper bounds (ms) of the latency histogram buckets; the implicit last bucket is +Inf. */
  latencyBucketsMs: number[];
  /** Non-cumulative count per bucket: latencyBucketsMs.length entries, plus optionally one for +Inf. */
  latencyCounts: number[];
  sumMs: number;
}

/** Certificate the proxy currently presents (reported by the proxy; the operator also records the mTLS peer). */
export interface CertificateInfo {
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  spiffeId?: string;
  issuer?: string;
  /** The cluster the certificate is bound to (subject OU, set by the mesh CA from the join token's cluster). */
  cluster?: string;
}

export interface HelloMessage {
  v: number;
  type: 'hello';
  identity: ProxyIdentity;
  proxyVersion: string;
  meshVersion: string;
  /** Version of the snapshot the proxy serves now (e.g. its last-good from disk), or null. */
  runningHash: string | null;
  endpoint?: WorkloadEndpointRegistration;
  certificate?: CertificateInfo;
  /** Optional protocol features the proxy understands (e.g. RESOURCES_V2_FEATURE); unknown ones are ignored. */
  features?: string[];
}

export interface AckMessage {
  v: number;
  type: 'ack';
  hash: string;
}

export interface NackMessage {
  v: number;
  type: 'nack';
  hash: string;
  reason: string;
}

export interface HeartbeatMessage {
  v: number;
  type: 'heartbeat';
  stats: HeartbeatStat[];
  runningHash: string | null;
  certificate?: CertificateInfo;
}

export type ProxyMessage = HelloMessage | AckMessage | NackMessage | HeartbeatMessage;

export interface SnapshotMessage {
  v: number;
  type: 'snapshot';
  /** Content hash of the full snapshot after applying this delta. */
  version: string;
  /** Version the delta applies to; null = full snapshot (replace everything). */
  base: string | null;
  /** Named resources that are new or changed. */
  resources: Record<string, unknown>;
  /** Names of resources to drop. */
  removed: string[];
}

export interface ErrorMessage {
  v: number;
  type: 'error';
  code: 'unauthenticated' | 'bad-request' | 'unsupported-version' | 'replaced';
  message: string;
}

export type OperatorMessage = SnapshotMessage | ErrorMessage;

export function encodeMessage(message: ProxyMessage | OperatorMessage): string {
  return `${JSON.stringify(message)}\n`;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Splits a byte stream into lines; feed chunks, get complete lines back (buffers are joined once per line). */
export class LineDecoder {
  private parts: Buffer[] = [];
  private partBytes = 0;

  constructor(private readonly maxLineBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer | string): string[] {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      const tail = data.subarray(start, nl);
      const line = this.parts.length === 0 ? tail.toString('utf8') : Buffer.concat([...this.parts, tail]).toString('utf8');
      this.parts = [];
      this.partBytes = 0;
      start = nl + 1;
      if (line.trim() !== '') lines.push(line);
    }
    if (start < data.length) {
      this.parts.push(data.subarray(start));
      this.partBytes += data.length - start;
      if (this.partBytes > this.maxLineBytes) throw new ProtocolError(`message exceeds ${this.maxLineBytes} bytes`);
    }
    return lines;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseLine(line: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ProtocolError(`message is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(value)) throw new ProtocolError('message is not a JSON object');
  if (value.v !== PROTOCOL_VERSION) throw new ProtocolError(`unsupported protocol version ${String(value.v)} (want ${PROTOCOL_VERSION})`);
  if (typeof value.type !== 'string') throw new ProtocolError('message has no type');
  return value;
}

function expectString(msg: Record<string, unknown>, field: string, nullable = false): void {
  const value = msg[field];
  if (typeof value === 'string') return;
  if (nullable && value === null) return;
  throw new ProtocolError(`${String(msg.type)}.${field} must be a string${nullable ? ' or null' : ''}`);
}

/** Parses and shape-checks one proxy → operator line. */
export function decodeProxyMessage(line: string): ProxyMessage {
  const msg = parseLine(line);
  switch (msg.type) {
    case 'hello': {
      const id = msg.identity;
      if (!isRecord(id) || typeof id.id !== 'string' || typeof id.cluster !== 'string' || typeof id.namespace !== 'string') {
        throw new ProtocolError('hello.identity must have id, cluster and namespace');
      }
      if (typeof id.workload !== 'string' || typeof id.serviceAccount !== 'string') {
        throw new ProtocolError('hello.identity must have workload and serviceAccount');
      }
      if (id.mode !== 'sidecar' && id.mode !== 'gateway') throw new ProtocolError('hello.identity.mode must be sidecar or gateway');
      if (!isRecord(id.labels)) throw new ProtocolError('hello.identity.labels must be an object');
      expectString(msg, 'proxyVersion');
      expectString(msg, 'meshVersion');
      expectString(msg, 'runningHash', true);
      if (msg.endpoint !== undefined) {
        const ep = msg.endpoint;
        if (!isRecord(ep) || typeof ep.address !== 'string' || typeof ep.port !== 'number') {
          throw new ProtocolError('hello.endpoint must have address (string) and port (number)');
        }
      }
      if (msg.features !== undefined && (!Array.isArray(msg.features) || !msg.features.every((f) => typeof f === 'string'))) {
        throw new ProtocolError('hello.features must be a list of strings');
      }
      return msg as unknown as HelloMessage;
    }
    case 'ack':
      expectString(msg, 'hash');
      return msg as unknown as AckMessage;
    case 'nack':
      expectString(msg, 'hash');
      expectString(msg, 'reason');
      return msg as unknown as NackMessage;
    case 'heartbeat':
      if (!Array.isArray(msg.stats)) throw new ProtocolError('heartbeat.stats must be an array');
      expectString(msg, 'runningHash', true);
      return msg as unknown as HeartbeatMessage;
    default:
      throw new ProtocolError(`unknown message type ${String(msg.type)}`);
  }
}

/** Parses and shape-checks one operator → proxy line. */
export function decodeOperatorMessage(line: string): OperatorMessage {
  const msg = parseLine(line);
  switch (msg.type) {
    case 'snapshot':
      expectString(msg, 'version');
      expectString(msg, 'base', true);
      if (!isRecord(msg.resources)) throw new ProtocolError('snapshot.resources must be an object');
      if (!Array.isArray(msg.removed)) throw new ProtocolError('snapshot.removed must be an array');
      return msg as unknown as SnapshotMessage;
    case 'error':
      expectString(msg, 'code');
      expectString(msg, 'message');
      return msg as unknown as ErrorMessage;
    default:
      throw new ProtocolError(`unknown message type ${String(msg.type)}`);
  }
}
