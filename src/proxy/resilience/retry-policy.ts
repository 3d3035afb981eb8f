import type { RetryPolicy } from '../../mesh/snapshot.js';
import type { AttemptFailure } from '../errors.js';

const ON_5XX = 1, ON_GATEWAY = 2, ON_RESET = 4, ON_CONNECT = 8, ON_4XX = 16, ON_CODES = 32, ON_REFUSED = 64, ON_UNAVAILABLE = 128, ON_CANCELLED = 256;
const TOKENS: Record<string, number> = {
  '5xx': ON_5XX,
  'gateway-error': ON_GATEWAY,
  reset: ON_RESET,
  'reset-before-request': ON_RESET,
  'connect-failure': ON_CONNECT,
  'retriable-4xx': ON_4XX,
  'retriable-status-codes': ON_CODES,
  'refused-stream': ON_REFUSED,
  unavailable: ON_UNAVAILABLE,
  cancelled: ON_CANCELLED,
};

/** A RetryPolicy compiled once per route: tokens to a bit set, codes to a Set. */
export interface CompiledRetry {
  attempts: number;
  perTryTimeoutMs?: number;
  bits: number;
  codes: Set<number>;
  backoffBaseMs: number;
}

export function compileRetry(p: RetryPolicy): CompiledRetry {
  let bits = 0;
  for (const t of p.retryOn) bits |= TOKENS[t.trim()] ?? 0;
  const codes = new Set(p.retriableStatusCodes);
  for (const t of p.retryOn) if (/^\d{3}$/.test(t.trim())) codes.add(Number(t.trim()));
  if (codes.size) bits |= ON_CODES;
  return { attempts: Math.max(0, p.attempts), perTryTimeoutMs: p.perTryTimeoutMs, bits, codes, backoffBaseMs: p.backoffBaseMs > 0 ? p.backoffBaseMs : 25 };
}

/** Envoy's retry-on semantics for a response that arrived. */
export function retriableStatus(r: CompiledRetry, status: number, grpcStatus?: string): boolean {
  const b = r.bits;
  if (b & ON_5XX && status >= 500) return true;
  if (b & ON_GATEWAY && (status === 502 || status === 503 || status === 504)) return true;
  if (b & ON_4XX && status === 409) return true;
  if (b & ON_CODES && r.codes.has(status)) return true;
  if (grpcStatus !== undefined) {
    if (b & ON_UNAVAILABLE && grpcStatus === '14') return true;
    if (b & ON_CANCELLED && grpcStatus === '1') return true;
  }
  return false;
}

/**
 * Envoy's retry-on semantics for an attempt that got no response. `beforeResponseOnIdempotent` marks
 * a reset of a reused keep-alive connection before any response byte (HTTP/1's refused stream).
 */
export function retriableFailure(r: CompiledRetry, f: AttemptFailure, idempotentReset: boolean): boolean {
  const b = r.bits;
  switch (f) {
    case 'connect-failure':
      return (b & (ON_CONNECT | ON_5XX | ON_GATEWAY | ON_RESET)) !== 0;
    case 'reset':
      return (b & (ON_5XX | ON_GATEWAY | ON_RESET)) !== 0 || ((b & ON_REFUSED) !== 0 && idempotentReset);
    case 'per-try-timeout':
      return (b & (ON_5XX | ON_GATEWAY | ON_RESET)) !== 0;
    default:
      return false;
  }
}

/** Fully jittered exponential backoff: uniform in [0, min((2^n - 1) * base, 10 * base)), n = retry number from 1. */
export function backoffMs(r: CompiledRetry, retryNumber: number, random: () => number = Math.random): number {
  const ceiling = Math.min((2 ** retryNumber - 1) * r.backoffBaseMs, 10 * r.backoffBaseMs);
  return Math.floor(random() * ceiling);
}
