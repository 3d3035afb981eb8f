/**
 * Telemetry across real sockets: client → hop A → hop B → upstream, each hop a small node:http
 * forwarder that does what the proxy's request path does with this module (request id, trace
 * propagation, one metric series, one access-log line). Checks that ids survive end to end and
 * that the span chain links hop to hop.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { ProxyIdentity } from '../../../src/mesh/snapshot.js';
import {
  IstioMetrics,
  createAccessLogger,
  ensureRequestId,
  propagateTrace,
  type AccessLogger,
  type SeriesHandle,
} from '../../../src/proxy/telemetry/index.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

interface Hop {
  server: http.Server;
  agent: http.Agent;
  metrics: IstioMetrics;
  lines: Array<Record<string, unknown>>;
  port: number;
}

function identity(workload: string): ProxyIdentity {
  return {
    id: `c1/default/${workload}/0`,
    cluster: 'c1',
    namespace: 'default',
    workload,
    labels: { app: workload, version: 'v1' },
    serviceAccount: workload,
    mode: 'sidecar',
  };
}

function listen(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => (server.address() as AddressInfo).port);
}

async function startHop(workload: string, nextPort: () => number): Promise<Hop> {
  const metrics = new IstioMetrics({ proxy: identity(workload), meshVersion: '1.22.0' });
  const series: SeriesHandle = metrics.series({
    reporter: 'source',
    destinationService: 'next.default.svc.cluster.local',
    destinationWorkload: 'next',
    destinationNamespace: 'default',
    requestProtocol: 'http',
    connectionSecurityPolicy: 'unknown',
  });
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log: AccessLogger = createAccessLogger({ enabled: true, encoding: 'JSON', destination: sink });
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const start = performance.now();
    const headers: IncomingHttpHeaders = { ...req.headers };
    const requestId = ensureRequestId(headers);
    const trace = propagateTrace(headers, { samplingPercent: 100 });
    let requestBytes = 0;
    req.on('data', (c: Buffer) => (requestBytes += c.length));
    const up = http.request({ host: '127.0.0.1', port: nextPort(), path: req.url, method: req.method, headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      let responseBytes = 0;
      ur.on('data', (c: Buffer) => {
        responseBytes += c.length;
        res.write(c);
      });
      ur.on('end', () => {
        res.end();
        const durationMs = performance.now() - start;
        series.observe(ur.statusCode ?? 0, '-', durationMs, requestBytes, responseBytes);
        log.log({
          start_time: new Date().toISOString(),
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          protocol: `HTTP/${req.httpVersion}`,
          response_code: ur.statusCode ?? 0,
          response_flags: '-',
          bytes_received: requestBytes,
          bytes_sent: responseBytes,
          duration: Math.round(durationMs),
          upstream_host: `127.0.0.1:${nextPort()}`,
          upstream_cluster: 'outbound|80||next.default.svc.cluster.local',
          x_forwarded_for: null,
          user_agent: (req.headers['user-agent'] as string | undefined) ?? null,
          request_id: requestId,
          authority: req.headers.host ?? null,
          route_name: 'default',
          trace_id: trace.traceId,
        });
      });
    });
    up.on('error', () => {
      res.writeHead(503);
      res.end();
    });
    req.pipe(up);
  });
  const port = await listen(server);
  return { server, agent, metrics, lines, port };
}

describe('telemetry across a chain of hops over real sockets', () => {
  const seen: IncomingHttpHeaders[] = [];
  let upstream: http.Server;
  let upstreamPort = 0;
  let hopA: Hop;
  let hopB: Hop;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(req.url === '/fail' ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(req.url === '/fail' ? 'no' : 'hello');
      });
    });
    upstreamPort = await listen(upstream);
    hopB = await startHop('hop-b', () => upstreamPort);
    hopA = await startHop('hop-a', () => hopB.port);
  });

  afterAll(async () => {
    for (const s of [hopA?.server, hopB?.server, upstream]) {
      if (!s) continue;
      s.closeAllConnections();
      s.close();
      await once(s, 'close');
    }
    hopA?.agent.destroy();
    hopB?.agent.destroy();
  });

  async function get(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://127.0.0.1:${hopA.port}${path}`, { headers });
    return { status: res.status, body: await res.text() };
  }

  it('keeps the trace id and x-request-id end to end and links spans hop to hop', async () => {
    seen.length = 0;
    const r = await get('/hello', { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` });
    expect(r).toEqual({ status: 200, body: 'hello' });
    expect(seen).toHaveLength(1);
    const atUpstream = seen[0];

    const requestId = atUpstream['x-request-id'];
    expect(typeof requestId).toBe('string');
    expect(hopA.lines.at(-1)?.request_id).toBe(requestId);
    expect(hopB.lines.at(-1)?.request_id).toBe(requestId);

    expect(hopA.lines.at(-1)?.trace_id).toBe(TRACE);
    expect(hopB.lines.at(-1)?.trace_id).toBe(TRACE);
    const tp = String(atUpstream.traceparent).split('-');
    expect(tp[1]).toBe(TRACE);
    expect(atUpstream['x-b3-traceid']).toBe(TRACE);
    // Hop B's span is the last one; its parent is hop A's span, whose parent was the client's.
    expect(atUpstream['x-b3-spanid']).toBe(tp[2]);
    const hopASpan = atUpstream['x-b3-parentspanid'];
    expect(hopASpan).toMatch(/^[0-9a-f]{16}$/);
    expect(hopASpan).not.toBe(CLIENT_SPAN);
    expect(hopASpan).not.toBe(tp[2]);
    expect(tp[3]).toBe('01');
  });

  it('keeps a client-supplied x-request-id', async () => {
    seen.length = 0;
    await get('/hello', { 'x-request-id': 'client-chosen-id' });
    expect(seen[0]['x-request-id']).toBe('client-chosen-id');
    expect(hopB.lines.at(-1)?.request_id).toBe('client-chosen-id');
  });

  it('counts every request of every hop in its own exposition', async () => {
    await get('/fail', {});
    for (const hop of [hopA, hopB]) {
      const families = parsePrometheusTextFormat(hop.metrics.renderPrometheus());
      const total = families.find((f) => f.name === 'istio_requests_total');
      const byCode = new Map((total?.metrics ?? []).map((m) => [m.labels?.response_code, Number(m.value)]));
      expect(byCode.get('200')).toBe(2);
      expect(byCode.get('503')).toBe(1);
      expect(hop.metrics.versionStats()).toMatchObject([{ meshVersion: '1.22.0', requests: 3, errors5xx: 1 }]);
    }
    const lastA = hopA.lines.at(-1);
    expect(lastA).toMatchObject({ response_code: 503, path: '/fail', bytes_sent: 2 });
  });
});
