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

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const HEX16_OR_32 = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO = /^0+$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sampleNew(opts: PropagateOptions | undefined): boolean {
  const p = opts?.samplingPercent ?? 1;
  return p >= 100 ? true : p <= 0 ? false : Math.random() * 100 < p;
}

interface Incoming {
  traceId: string;
  parentSpanId?: string;
  sampled?: boolean;
  debug?: boolean;
  source: TraceSource;
}

function parseTraceparent(v: string | undefined): Incoming | undefined {
  if (v === undefined) return undefined;
  const m = TRACEPARENT.exec(v.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  if (ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  return { traceId, parentSpanId: spanId, sampled: (parseInt(flags, 16) & 1) === 1, source: 'traceparent' };
}

function parseB3Sampled(v: string | undefined): { sampled?: boolean; debug?: boolean } {
  if (v === '1' || v === 'true') return { sampled: true };
  if (v === '0' || v === 'false') return { sampled: false };
  if (v === 'd') return { sampled: true, debug: true };
  return {};
}

function parseB3Single(v: string | undefined): Incoming | undefined {
  if (v === undefined) return undefined;
  const parts = v.trim().split('-');
  if (parts.length < 2) return undefined; // a bare sampling state carries no trace to continue
  const [traceId, spanId, sampling, parent] = parts;
  if (!HEX16_OR_32.test(traceId) || !HEX16.test(spanId) || ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  if (parent !== undefined && !HEX16.test(parent)) return undefined;
  return { traceId, parentSpanId: spanId, ...parseB3Sampled(sampling), source: 'b3-single' };
}

function parseB3Multi(headers: IncomingHttpHeaders): Incoming | undefined {
  const traceId = header(headers, 'x-b3-traceid')?.toLowerCase();
  const spanId = header(headers, 'x-b3-spanid')?.toLowerCase();
  if (traceId === undefined || spanId === undefined) return undefined;
  if (!HEX16_OR_32.test(traceId) || !HEX16.test(spanId) || ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  const s = parseB3Sampled(header(headers, 'x-b3-sampled'));
  if (header(headers, 'x-b3-flags') === '1') s.debug = true;
  return { traceId, parentSpanId: spanId, ...s, source: 'b3' };
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
      ? { traceId: randomHexId(16), spanId, sampled: sampleNew(opts), source: 'new' }
      : {
          traceId: incoming.traceId,
          spanId,
          parentSpanId: incoming.parentSpanId,
          sampled: incoming.sampled ?? sampleNew(opts),
          source: incoming.source,
        };
  writeHeaders(headers, ctx, incoming?.debug === true);
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
