import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { Writable } from 'node:stream';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { Proxy, InboundFilter } from '../../src/proxy/index.js';
import { cluster, endpoint, route, snapshot, toCluster } from './fixtures.js';
import { send, startSidecar, startUpstream, waitFor, type Upstream } from './helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('sidecar inbound', () => {
  it('forwards inbound traffic to the app port and runs the inbound filter first', async () => {
    const app = await startUpstream();
    ups.push(app);
    const filter: InboundFilter = async (req, ctx) => {
      if (req.headers['x-deny'] !== undefined) return { status: 403, body: 'RBAC: access denied', headers: { 'x-why': 'test' } };
      expect(ctx.tls).toBe(false);
      return null;
    };
    proxy = await startSidecar(snapshot({}), { inboundPort: 0, appPort: app.port, inboundFilter: filter });
    const ok = await send(proxy.ports.inbound!, { path: '/in', headers: { host: 'whatever' } });
    expect(ok.status).toBe(200);
    expect(app.seen[0].url).toBe('/in');
    const denied = await send(proxy.ports.inbound!, { path: '/in', headers: { host: 'whatever', 'x-deny': '1' } });
    expect(denied.status).toBe(403);
    expect(denied.body).toBe('RBAC: access denied');
    expect(denied.headers['x-why']).toBe('test');
    expect(app.hits).toBe(1);
  });

  it('accepts TLS and plaintext on one inbound port when the TLS extension provides a server context', async () => {
    const app = await startUpstream();
    ups.push(app);
    const dir = mkdtempSync(join(tmpdir(), 'trellis-inbound-'));
    dirs.push(dir);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=app.local', '-addext', 'subjectAltName=DNS:app.local'], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'));
    const key = readFileSync(join(dir, 'key.pem'));
    let sawTls = false;
    proxy = await startSidecar(snapshot({}), {
      inboundPort: 0,
      appPort: app.port,
      tls: { serverContext: () => ({ cert, key }), clientContext: () => undefined },
      inboundFilter: async (_req, ctx) => { if (ctx.tls) sawTls = true; return null; },
    });
    const port = proxy.ports.inbound!;
    const viaTls = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/secure', servername: 'app.local', ca: cert, agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(`${res.statusCode} ${b}`));
      });
      req.on('error', reject);
      req.end();
    });
    expect(viaTls).toBe(`200 hello from ${app.port}`);
    expect(sawTls).toBe(true);
    expect((await send(port, { path: '/plain' })).status).toBe(200);
    expect(app.seen.map((s) => s.url)).toEqual(['/secure', '/plain']);
  });
});

describe('telemetry wiring', () => {
  it('serves Istio metrics in valid Prometheus text and writes JSON access logs when enabled', async () => {
    const a = await startUpstream((_q, res) => { res.writeHead(201); res.end('made'); });
    ups.push(a);
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _e, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
    const s = snapshot({ hosts: [{ domains: ['reviews'], routes: [route({ name: 'default/reviews/0', action: toCluster('c') })] }], clusters: [cluster('c', { service: 'reviews.default.svc.cluster.local' })], endpoints: { c: [{ ...endpoint(a.port, { app: 'reviews', version: 'v2' }), workload: 'reviews-v2', namespace: 'default' }] } });
    s.telemetry.accessLog = true;
    proxy = await startSidecar(s, { accessLogDestination: destination as never });
    for (let i = 0; i < 3; i++) await send(proxy.ports.outbound!, { path: '/r', headers: { host: 'reviews', 'x-request-id': `id-${i}` } });
    const text = (await send(proxy.ports.admin!, { path: '/stats/prometheus' })).body;
    const families = parsePrometheusTextFormat(text) as Array<{ name: string; metrics: Array<{ labels: Record<string, string>; value?: string }> }>;
    const total = families.find((f) => f.name === 'istio_requests_total')!;
    const series = total.metrics.find((m) => m.labels.response_code === '201')!;
    expect(series.value).toBe('3');
    expect(series.labels).toMatchObject({ reporter: 'source', destination_service: 'reviews.default.svc.cluster.local', destination_workload: 'reviews-v2', destination_version: 'v2', response_flags: '-' });
    expect(families.some((f) => f.name === 'istio_request_duration_milliseconds')).toBe(true);
    await waitFor(() => lines.length >= 3, 5000, 'access log lines');
    const entry = JSON.parse(lines[0]);
    expect(entry).toMatchObject({ method: 'GET', path: '/r', response_code: 201, request_id: 'id-0', route_name: 'default/reviews/0', upstream_cluster: 'c', authority: 'reviews' });
  });
});

describe('metrics off', () => {
  it('serves no Prometheus series but still counts per-mesh-version stats for rollout analysis', async () => {
    const a = await startUpstream((_q, res) => { res.writeHead(503); res.end(); });
    ups.push(a);
    const s = snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(a.port)] } });
    s.telemetry.metrics = false;
    proxy = await startSidecar(s);
    for (let i = 0; i < 4; i++) await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect((await send(proxy.ports.admin!, { path: '/stats/prometheus' })).body).toBe('');
    const stats = proxy.versionStats();
    expect(stats).toHaveLength(1);
    expect(stats[0]).toMatchObject({ meshVersion: '1.22.0', requests: 4, errors5xx: 4 });
  });
});

describe('inbound upgrades', () => {
  it('runs the inbound filter on WebSocket upgrades and relays allowed ones to the app', async () => {
    const { WebSocketServer, WebSocket } = await import('ws');
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`app got ${m.toString()}`)));
    const appPort = (wss.address() as { port: number }).port;
    try {
      proxy = await startSidecar(snapshot({}), {
        inboundPort: 0,
        appPort,
        inboundFilter: async (req) => (req.headers['x-deny'] ? { status: 403, body: 'RBAC: access denied' } : null),
      });
      const url = `ws://127.0.0.1:${proxy.ports.inbound}/chat`;
      const denied = new WebSocket(url, { headers: { 'x-deny': '1' } });
      denied.on('error', () => undefined);
      const status = await new Promise<number>((resolve) => denied.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      expect(status).toBe(403);
      denied.terminate();
      const ws = new WebSocket(url);
      await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
      const reply = new Promise<string>((r) => ws.once('message', (m) => r(m.toString())));
      ws.send('ping');
      expect(await reply).toBe('app got ping');
      ws.terminate();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
