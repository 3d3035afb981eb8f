import { NACK_BASE_MISMATCH, NACK_HASH_MISMATCH } from './protocol.js';
import type { AckMessage, HelloMessage, NackMessage } from './protocol.js';

/** What the operator remembers about a proxy's replies; drift is read from it alone. */
export interface ReplyRecord {
  /** Last snapshot version sent on the current connection (null: nothing sent yet). */
  sentHash: string | null;
  sentAt: number | null;
  /** Version the proxy confirmed it runs (ACK, or runningHash in its hello). */
  ackedHash: string | null;
  ackedAt: number | null;
  /** Last configuration rejection (a resync request is not one). */
  lastNack: { hash: string; reason: string; at: number } | null;
}

export type ReplyKind = 'init' | 'ack' | 'nack' | 'stale';

export interface ReplyClassification {
  kind: ReplyKind;
  /** The record after this reply. */
  record: ReplyRecord;
  /** The proxy cannot use deltas against what it holds: the next push must be a full snapshot. */
  resync: boolean;
}

/**
 * Classifies one proxy reply (STYLE §17), as a pure function:
 * - `init`: a hello; the proxy runs `runningHash`, nothing is sent yet on this connection;
 * - `ack`/`nack`: a reply to the latest version sent;
 * - `stale`: a reply to a version that a later push superseded (ignored).
 * A NACK with reason base-mismatch or hash-mismatch asks for a full resend and is not recorded as a rejection.
 */
export function classifyReply(record: ReplyRecord, reply: HelloMessage | AckMessage | NackMessage, now: number): ReplyClassification {
  switch (reply.type) {
    case 'hello':
      return {
        kind: 'init',
        resync: false,
        record: {
          ...record,
          sentHash: null,
          sentAt: null,
          ackedHash: reply.runningHash,
          ackedAt: reply.runningHash === null ? record.ackedAt : now,
        },
      };
    case 'ack':
      if (reply.hash !== record.sentHash) return { kind: 'stale', resync: false, record };
      return { kind: 'ack', resync: false, record: { ...record, ackedHash: reply.hash, ackedAt: now } };
    case 'nack': {
      if (reply.hash !== record.sentHash) return { kind: 'stale', resync: false, record };
      if (reply.reason === NACK_BASE_MISMATCH || reply.reason.startsWith(NACK_HASH_MISMATCH)) {
        return { kind: 'nack', resync: true, record };
      }
      return { kind: 'nack', resync: false, record: { ...record, lastNack: { hash: reply.hash, reason: reply.reason, at: now } } };
    }
  }
}

/**
 * SYNCED: runs the desired version. PENDING: the desired version is sent (or queued) and the ACK is
 * not yet due. STALE: sent, not acked within staleAfterMs. NACKED: the proxy rejected the latest
 * version sent. DISCONNECTED: no stream.
 */
export type DriftState = 'SYNCED' | 'PENDING' | 'STALE' | 'NACKED' | 'DISCONNECTED';

export interface DriftInput extends ReplyRecord {
  connected: boolean;
  desiredHash: string | null;
}

export function computeDrift(input: DriftInput, now: number, staleAfterMs: number): DriftState {
  if (!input.connected) return 'DISCONNECTED';
  if (input.desiredHash !== null && input.ackedHash === input.desiredHash) return 'SYNCED';
  if (input.lastNack !== null && input.lastNack.hash === input.sentHash) return 'NACKED';
  if (input.sentHash !== null && input.sentAt !== null && now - input.sentAt > staleAfterMs) return 'STALE';
  return 'PENDING';
}
