import { describe, expect, it } from '@jest/globals';
import type { IncomingHttpHeaders } from 'node:http';
import { ensureRequestId, propagateTrace } from '../../../src/proxy/telemetry/index.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function expectB3Multi(h: IncomingHttpHeaders, traceId: string, spanId: string, parent: string | undefined, sampled: boolean): void {
  expect(h['x-b3-traceid']).toBe(traceId);
  expect(h['x-b3-spanid']).toBe(spanId);
  expect(h['x-b3-parentspanid']).toBe(parent);
  expect(h['x-b3-sampled']).toBe(sampled ? '1' : '0');
}

describe('propagateTrace', () => {
  it('continues a W3C traceparent with a child span and keeps tracestate', () => {
    const h: IncomingHttpHeaders = { traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' };
    const ctx = propagateTrace(h);
    expect(ctx).toMatchObject({ traceId: TRACE, parentSpanId: SPAN, sampled: true, source: 'traceparent' });
    expect(ctx.spanId).toMatch(HEX16);
    expect(ctx.spanId).not.toBe(SPAN);
    expect(h.traceparent).toBe(`00-${TRACE}-${ctx.spanId}-01`);
    expect(h.tracestate).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    expectB3Multi(h, TRACE, ctx.spanId, SPAN, true);
  });

  it('keeps the unsampled flag of a traceparent even when sampling everything', () => {
    const h: IncomingHttpHeaders = { traceparent: `00-${TRACE}-${SPAN}-00` };
    const ctx = propagateTrace(h, { samplingPercent: 100 });
    expect(ctx.sampled).toBe(false);
    expect(h.traceparent).toBe(`00-${TRACE}-${ctx.spanId}-00`);
  });

  it('continues B3 multi headers, including 64-bit trace ids', () => {
    const h: IncomingHttpHeaders = { 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': SPAN, 'x-b3-parentspanid': '1111111111111111', 'x-b3-sampled': '1' };
    const ctx = propagateTrace(h);
    expect(ctx).toMatchObject({ traceId: 'a3ce929d0e0e4736', parentSpanId: SPAN, sampled: true, source: 'b3' });
    expectB3Multi(h, 'a3ce929d0e0e4736', ctx.spanId, SPAN, true);
    // W3C needs 128 bits: the 64-bit id is left-padded with zeros.
    expect(h.traceparent).toBe(`00-0000000000000000a3ce929d0e0e4736-${ctx.spanId}-01`);
    expect(h.b3).toBeUndefined();
  });

  it('continues a single b3 header and rewrites it with the new span', () => {
    const h: IncomingHttpHeaders = { b3: `${TRACE}-${SPAN}-0-1111111111111111` };
    const ctx = propagateTrace(h, { samplingPercent: 100 });
    expect(ctx).toMatchObject({ traceId: TRACE, parentSpanId: SPAN, sampled: false, source: 'b3-single' });
    expect(h.b3).toBe(`${TRACE}-${ctx.spanId}-0-${SPAN}`);
    expect(h.traceparent).toBe(`00-${TRACE}-${ctx.spanId}-00`);
    expectB3Multi(h, TRACE, ctx.spanId, SPAN, false);
  });

  it('keeps the B3 debug flag in a single header', () => {
    const h: IncomingHttpHeaders = { b3: `${TRACE}-${SPAN}-d` };
    const ctx = propagateTrace(h);
    expect(ctx.sampled).toBe(true);
    expect(h.b3).toBe(`${TRACE}-${ctx.spanId}-d-${SPAN}`);
  });

  it('starts a new trace when there is none, sampling by the given percentage', () => {
    const sampled: IncomingHttpHeaders = {};
    const a = propagateTrace(sampled, { samplingPercent: 100 });
    expect(a.source).toBe('new');
    expect(a.traceId).toMatch(HEX32);
    expect(a.spanId).toMatch(HEX16);
    expect(a.parentSpanId).toBeUndefined();
    expect(sampled.traceparent).toBe(`00-${a.traceId}-${a.spanId}-01`);
    expectB3Multi(sampled, a.traceId, a.spanId, undefined, true);

    const unsampled: IncomingHttpHeaders = {};
    const b = propagateTrace(unsampled, { samplingPercent: 0 });
    expect(b.sampled).toBe(false);
    expect(b.traceId).not.toBe(a.traceId);
    expect(unsampled.traceparent).toMatch(TRACEPARENT);
    expect(String(unsampled.traceparent).endsWith('-00')).toBe(true);
  });

  it.each([
    ['bad length', `00-${TRACE}-${SPAN.slice(1)}-01`],
    ['upper case', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['extra field on version 00', `00-${TRACE}-${SPAN}-01-extra`],
    ['garbage', 'not-a-trace'],
  ])('restarts the trace on an invalid traceparent (%s) and drops its tracestate', (_name, value) => {
    const h: IncomingHttpHeaders = { traceparent: value, tracestate: 'congo=t61rcWkgMzE' };
    const ctx = propagateTrace(h, { samplingPercent: 0 });
    expect(ctx.source).toBe('new');
    expect(ctx.traceId).not.toBe(TRACE);
    expect(h.traceparent).toBe(`00-${ctx.traceId}-${ctx.spanId}-00`);
    expect(h.tracestate).toBeUndefined();
  });

  it('accepts a future traceparent version with extra fields', () => {
    const h: IncomingHttpHeaders = { traceparent: `01-${TRACE}-${SPAN}-01-future` };
    expect(propagateTrace(h)).toMatchObject({ traceId: TRACE, source: 'traceparent' });
  });

  it('falls back to B3 when the traceparent is invalid', () => {
    const h: IncomingHttpHeaders = { traceparent: 'bogus', 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN };
    const ctx = propagateTrace(h, { samplingPercent: 100 });
    expect(ctx).toMatchObject({ traceId: TRACE, parentSpanId: SPAN, source: 'b3', sampled: true });
  });

  it('accepts upper-case B3 ids and propagates them in lower case', () => {
    const h: IncomingHttpHeaders = { 'x-b3-traceid': TRACE.toUpperCase(), 'x-b3-spanid': SPAN.toUpperCase(), 'x-b3-flags': '1' };
    const ctx = propagateTrace(h, { samplingPercent: 0 });
    expect(ctx).toMatchObject({ traceId: TRACE, parentSpanId: SPAN, sampled: true, source: 'b3' });
  });

  it('defers to the sampling percentage when B3 carries no decision', () => {
    const ctx = propagateTrace({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN }, { samplingPercent: 0 });
    expect(ctx).toMatchObject({ traceId: TRACE, sampled: false });
  });

  it.each([
    ['a bare sampling state', '0'],
    ['a short span id', `${TRACE}-00f067aa`],
    ['an all-zero trace id', `${'0'.repeat(32)}-${SPAN}-1`],
    ['a bad parent span id', `${TRACE}-${SPAN}-1-xyz`],
  ])('starts a new trace from a single b3 header with %s', (_name, value) => {
    const h: IncomingHttpHeaders = { b3: value };
    const ctx = propagateTrace(h, { samplingPercent: 100 });
    expect(ctx.source).toBe('new');
    expect(h.b3).toBe(`${ctx.traceId}-${ctx.spanId}-1`);
  });

  it('makes a fresh span id for every hop', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(propagateTrace({ traceparent: `00-${TRACE}-${SPAN}-01` }).spanId);
    expect(seen.size).toBe(1000);
  });
});

describe('ensureRequestId', () => {
  it('keeps an incoming x-request-id', () => {
    const h: IncomingHttpHeaders = { 'x-request-id': 'abc-123' };
    expect(ensureRequestId(h)).toBe('abc-123');
    expect(h['x-request-id']).toBe('abc-123');
  });

  it('generates a UUID v4 when absent or empty and sets it', () => {
    const h: IncomingHttpHeaders = {};
    const id = ensureRequestId(h);
    expect(id).toMatch(UUID_V4);
    expect(h['x-request-id']).toBe(id);
    const empty: IncomingHttpHeaders = { 'x-request-id': '' };
    const id2 = ensureRequestId(empty);
    expect(id2).toMatch(UUID_V4);
    expect(id2).not.toBe(id);
  });

  it('collapses a repeated header to its first value', () => {
    const h = { 'x-request-id': ['first', 'second'] } as unknown as IncomingHttpHeaders;
    expect(ensureRequestId(h)).toBe('first');
    expect(h['x-request-id']).toBe('first');
  });
});
