/**
 * Trace-context propagation for one upstream hop: W3C Trace Context (`traceparent`, `tracestate`)
 * and B3 (multi-header `x-b3-*` and single `b3`). The incoming trace id is kept, a new span id is
 * made for the hop (the incoming span becomes its parent), and the headers are written back. With
 * no valid incoming context a new trace starts.
 *
 * Precedence: a valid traceparent, then single `b3`, then `x-b3-*`. An invalid traceparent is
 * ignored together with its tracestate (W3C Trace Context §3.3: restart the trace).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { randomHexId } from './random-id.js';

export type TraceSource = 'traceparent' | 'b3' | 'b3-single' | 'new';

export interface TraceContext {
  /** The trace id as received (B3 allows 16 hex digits) or newly made (32 hex digits). */
  traceId: string;
  /** The span id of the upstream hop, written into the outgoing headers (16 hex digits). */
  spanId: string;
  /** The incoming span id, if any. */
  parentSpanId?: string;
  sampled: boolean;
  /** Where the trace came from. */
  source: TraceSource;
}

export interface PropagateOptions {
  /** Sampling decision for new traces and for incoming ones that defer it; default 1 (Istio's default). */
  samplingPercent?: number;
}

// Hand-written validation: a regex with captures allocates a match array and one string per
// group on every request; these loops allocate only the ids that are kept.

/** True when s[from, to) is lower-case hex. */
function isLowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** True when s[from, to) is all `0` (an invalid trace or span id). */
function isZero(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) !== 48) return false;
  return true;
}

/** A B3 trace id: 16 or 32 lower-hex digits, not all zero. */
function isB3TraceId(s: string): boolean {
  return (s.length === 16 || s.length === 32) && isLowerHex(s, 0, s.length) && !isZero(s, 0, s.length);
}

/** A span id: 16 lower-hex digits, not all zero. */
function isSpanId(s: string): boolean {
  return s.length === 16 && isLowerHex(s, 0, 16) && !isZero(s, 0, 16);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sampleNew(opts: PropagateOptions | undefined): boolean {
  const p = opts?.samplingPercent ?? 1;
  return p >= 100 ? true : p <= 0 ? false : Math.random() * 100 < p;
}

// B3 sampling state.
const DEFER = 0;
const ACCEPT = 1;
const DENY = 2;
const DEBUG = 3;

interface Incoming {
  traceId: string;
  parentSpanId: string;
  sampling: number;
  source: TraceSource;
}

function parseTraceparent(v: string | undefined): Incoming | undefined {
  if (v === undefined) return undefined;
  const s = v.length === 55 ? v : v.trim();
  const n = s.length;
  if (n < 55 || s.charCodeAt(2) !== 45 || s.charCodeAt(35) !== 45 || s.charCodeAt(52) !== 45) return undefined;
  if (!isLowerHex(s, 0, 2) || !isLowerHex(s, 3, 35) || !isLowerHex(s, 36, 52) || !isLowerHex(s, 53, 55)) return undefined;
  const v0 = s.charCodeAt(0);
  const v1 = s.charCodeAt(1);
  if (v0 === 102 && v1 === 102) return undefined; // version ff is invalid
  // Version 00 has exactly four fields; later versions may append `-…` fields.
  if (n > 55 && ((v0 === 48 && v1 === 48) || s.charCodeAt(55) !== 45)) return undefined;
  if (isZero(s, 3, 35) || isZero(s, 36, 52)) return undefined;
  const f = s.charCodeAt(54);
  const sampled = ((f <= 57 ? f - 48 : f - 87) & 1) === 1;
  return { traceId: s.slice(3, 35), parentSpanId: s.slice(36, 52), sampling: sampled ? ACCEPT : DENY, source: 'traceparent' };
}

function parseB3Sampling(v: string | undefined): number {
  if (v === '1' || v === 'true') return ACCEPT;
  if (v === '0' || v === 'false') return DENY;
  if (v === 'd') return DEBUG;
  return DEFER;
}

function parseB3Single(v: string | undefined): Incoming | undefined {
  if (v === undefined) return undefined;
  const parts = v.trim().split('-');
  if (parts.length < 2 || parts.length > 4) return undefined; // a bare sampling state carries no trace
  const [traceId, spanId, sampling, parent] = parts;
  if (!isB3TraceId(traceId) || !isSpanId(spanId)) return undefined;
  if (parent !== undefined && !isSpanId(parent)) return undefined;
  return { traceId, parentSpanId: spanId, sampling: parseB3Sampling(sampling), source: 'b3-single' };
}

function parseB3Multi(headers: IncomingHttpHeaders): Incoming | undefined {
  let traceId = header(headers, 'x-b3-traceid');
  let spanId = header(headers, 'x-b3-spanid');
  if (traceId === undefined || spanId === undefined) return undefined;
  // Lenient with upper-case ids (some clients send them); propagated in lower case.
  if (!isB3TraceId(traceId)) traceId = traceId.toLowerCase();
  if (!isSpanId(spanId)) spanId = spanId.toLowerCase();
  if (!isB3TraceId(traceId) || !isSpanId(spanId)) return undefined;
  const sampling = header(headers, 'x-b3-flags') === '1' ? DEBUG : parseB3Sampling(header(headers, 'x-b3-sampled'));
  return { traceId, parentSpanId: spanId, sampling, source: 'b3' };
}

/**
 * Continues (or starts) the trace of a request for its upstream hop and rewrites `headers`:
 * `traceparent` and `x-b3-*` always, `tracestate` kept only with a valid traceparent, single `b3`
 * rewritten only when the request had one.
 */
export function propagateTrace(headers: IncomingHttpHeaders, opts?: PropagateOptions): TraceContext {
  let incoming = parseTraceparent(header(headers, 'traceparent'));
  if (incoming === undefined) {
    // Deleting an existing property turns the object into a slow dictionary; only do it when needed.
    if (headers['tracestate'] !== undefined) delete headers['tracestate'];
    incoming = parseB3Single(header(headers, 'b3')) ?? parseB3Multi(headers);
  }
  const spanId = randomHexId(8);
  const ctx: TraceContext =
    incoming === undefined
      ? { traceId: randomHexId(16), spanId, parentSpanId: undefined, sampled: sampleNew(opts), source: 'new' }
      : {
          traceId: incoming.traceId,
          spanId,
          parentSpanId: incoming.parentSpanId,
          sampled: incoming.sampling === DEFER ? sampleNew(opts) : incoming.sampling !== DENY,
          source: incoming.source,
        };
  writeHeaders(headers, ctx, incoming !== undefined && incoming.sampling === DEBUG);
  return ctx;
}

function writeHeaders(headers: IncomingHttpHeaders, ctx: TraceContext, debug: boolean): void {
  const w3cTraceId = ctx.traceId.length === 32 ? ctx.traceId : ctx.traceId.padStart(32, '0');
  headers['traceparent'] = `00-${w3cTraceId}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`;
  headers['x-b3-traceid'] = ctx.traceId;
  headers['x-b3-spanid'] = ctx.spanId;
  if (ctx.parentSpanId !== undefined) headers['x-b3-parentspanid'] = ctx.parentSpanId;
  else if (headers['x-b3-parentspanid'] !== undefined) delete headers['x-b3-parentspanid'];
  headers['x-b3-sampled'] = ctx.sampled ? '1' : '0';
  if (headers['b3'] !== undefined) {
    const sampling = debug ? 'd' : ctx.sampled ? '1' : '0';
    headers['b3'] =
      `${ctx.traceId}-${ctx.spanId}-${sampling}` + (ctx.parentSpanId !== undefined ? `-${ctx.parentSpanId}` : '');
  }
}
