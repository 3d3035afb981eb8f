import { afterEach, describe, expect, it } from '@jest/globals';
import { WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import type { Proxy } from '../../src/proxy/index.js';
import type { Route } from '../../src/mesh/snapshot.js';
import { cluster, endpoint, route, snapshot, toCluster, DEFAULT_POOL } from './fixtures.js';
import { send, startSidecar, startUpstream, waitFor, seeded, type Upstream } from './helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
});

async function upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const u = await startUpstream(...args);
  ups.push(u);
  return u;
}

describe('routing end to end', () => {
  it('splits traffic by weight within a statistical bound', async () => {
    const [v1, v2, v3] = [await upstream(), await upstream(), await upstream()];
    proxy = await startSidecar(
      snapshot({
        hosts: [{
          domains: ['reviews'],
          routes: [route({ action: { kind: 'route', destinations: [{ cluster: 'v1', weight: 50 }, { cluster: 'v2', weight: 30 }, { cluster: 'v3', weight: 20 }] } })],
        }],
        clusters: [cluster('v1'), cluster('v2'), cluster('v3')],
        endpoints: { v1: [endpoint(v1.port)], v2: [endpoint(v2.port)], v3: [endpoint(v3.port)] },
      }),
    );
    const n = 600;
    await Promise.all(Array.from({ length: 6 }, async () => { for (let i = 0; i < n / 6; i++) await send(proxy!.ports.outbound!, { headers: { host: 'reviews' } }); }));
    // Binomial bounds at ~5 standard deviations.
    expect(Math.abs(v1.hits - 300)).toBeLessThan(62);
    expect(Math.abs(v2.hits - 180)).toBeLessThan(57);
    expect(Math.abs(v3.hits - 120)).toBeLessThan(50);
    expect(v1.hits + v2.hits + v3.hits).toBe(n);
  });

  it('routes end-user: jason to v2 and everyone else to v3 (header match, first match wins)', async () => {
    const [v2, v3] = [await upstream(), await upstream()];
    proxy = await startSidecar(
      snapshot({
        hosts: [{
          domains: ['reviews'],
          routes: [
            route({ name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }], action: toCluster('v2') }),
            route({ name: 'rest', action: toCluster('v3') }),
          ],
        }],
        clusters: [cluster('v2'), cluster('v3')],
        endpoints: { v2: [endpoint(v2.port)], v3: [endpoint(v3.port)] },
      }),
    );
    await send(proxy.ports.outbound!, { headers: { host: 'reviews', 'end-user': 'jason' } });
    await send(proxy.ports.outbound!, { headers: { host: 'reviews', 'end-user': 'kim' } });
    await send(proxy.ports.outbound!, { headers: { host: 'reviews' } });
    expect([v2.hits, v3.hits]).toEqual([1, 2]);
  });

  it('rewrites uri and authority, and applies header set/add/remove at route and destination level', async () => {
    const a = await upstream((_q, res) => { res.setHeader('x-drop', '1'); res.setHeader('x-resp', 'up'); res.end('ok'); });
    const r: Route = route({
      match: [{ uri: { prefix: '/api/' } }],
      rewrite: { uri: '/v2/', authority: 'backend.internal' },
      action: { kind: 'route', destinations: [{ cluster: 'c', weight: 1, requestHeaders: { set: { 'x-dest': 'd' } }, responseHeaders: { add: { 'x-resp': 'dest' } } }] },
      requestHeaders: { set: { 'x-route': 'r' }, add: { 'x-multi': 'two' }, remove: ['x-secret'] },
      responseHeaders: { remove: ['x-drop'], set: { 'x-served-by': 'trellis' } },
    });
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [r] }], clusters: [cluster('c')], endpoints: { c: [endpoint(a.port)] } }));
    const res = await send(proxy.ports.outbound!, { path: '/api/items?q=1', headers: { host: 'svc', 'x-secret': 's', 'x-multi': 'one' } });
    expect(res.status).toBe(200);
    const seen = a.seen[0];
    expect(seen.url).toBe('/v2/items?q=1');
    expect(seen.headers.host).toBe('backend.internal');
    expect(seen.headers['x-route']).toBe('r');
    expect(seen.headers['x-dest']).toBe('d');
    expect(seen.headers['x-multi']).toBe('one, two');
    expect(seen.headers['x-secret']).toBeUndefined();
    expect(res.headers['x-drop']).toBeUndefined();
    expect(res.headers['x-served-by']).toBe('trellis');
    expect(res.headers['x-resp']).toBe('up, dest');
  });

  it('answers redirects (301 default) and direct responses without an upstream', async () => {
    proxy = await startSidecar(
      snapshot({
        hosts: [{
          domains: ['svc'],
          routes: [
            route({ name: 'moved', match: [{ uri: { prefix: '/old' } }], action: { kind: 'redirect', redirect: { prefixRewrite: '/new', code: 301 } } }),
            route({ name: 'found', match: [{ uri: { exact: '/tmp' } }], action: { kind: 'redirect', redirect: { authority: 'other', scheme: 'https', code: 302 } } }),
            route({ name: 'direct', match: [{ uri: { exact: '/health' } }], action: { kind: 'directResponse', status: 418, body: 'teapot' } }),
          ],
        }],
      }),
    );
    const moved = await send(proxy.ports.outbound!, { path: '/old/page?x=1', headers: { host: 'svc' } });
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe('http://svc/new/page?x=1');
    const found = await send(proxy.ports.outbound!, { path: '/tmp', headers: { host: 'svc' } });
    expect(found.status).toBe(302);
    expect(found.headers.location).toBe('https://other/tmp');
    const direct = await send(proxy.ports.outbound!, { path: '/health', headers: { host: 'svc' } });
    expect(direct.status).toBe(418);
    expect(direct.body).toBe('teapot');
  });

  it('answers CORS preflights itself and decorates simple requests; unmatched preflights are forwarded', async () => {
    const a = await upstream();
    proxy = await startSidecar(
      snapshot({
        hosts: [{
          domains: ['svc'],
          routes: [route({
            action: toCluster('c'),
            cors: { allowOrigins: [{ exact: 'https://app.example' }], allowMethods: ['GET', 'PUT'], allowHeaders: ['x-token'], exposeHeaders: ['x-trace'], maxAgeSeconds: 600, allowCredentials: true, unmatchedPreflights: 'FORWARD' },
          })],
        }],
        clusters: [cluster('c')],
        endpoints: { c: [endpoint(a.port)] },
      }),
    );
    const pre = await send(proxy.ports.outbound!, { method: 'OPTIONS', headers: { host: 'svc', origin: 'https://app.example', 'access-control-request-method': 'PUT' } });
    expect(pre.status).toBe(200);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(pre.headers['access-control-allow-methods']).toBe('GET,PUT');
    expect(pre.headers['access-control-max-age']).toBe('600');
    expect(a.hits).toBe(0);
    const other = await send(proxy.ports.outbound!, { method: 'OPTIONS', headers: { host: 'svc', origin: 'https://evil.example', 'access-control-request-method': 'PUT' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(a.hits).toBe(1);
    const simple = await send(proxy.ports.outbound!, { headers: { host: 'svc', origin: 'https://app.example' } });
    expect(simple.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(simple.headers['access-control-expose-headers']).toBe('x-trace');
    expect(simple.headers['access-control-allow-credentials']).toBe('true');
  });

  it('answers 404 NR when no route matches on a known host', async () => {
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ match: [{ uri: { exact: '/only' } }], action: { kind: 'directResponse', status: 200 } })] }], outboundTrafficPolicy: 'REGISTRY_ONLY' }));
    const r = await send(proxy.ports.outbound!, { path: '/other', headers: { host: 'svc' } });
    expect(r.headers['x-trellis-response-flags']).toBe('NR');
  });
});

describe('load balancing', () => {
  async function three(): Promise<Upstream[]> {
    return [await upstream(), await upstream(), await upstream()];
  }

  it('ROUND_ROBIN cycles through endpoints', async () => {
    const eps = await three();
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', { lb: { simple: 'ROUND_ROBIN' } })], endpoints: { c: eps.map((u) => endpoint(u.port)) } }));
    for (let i = 0; i < 9; i++) await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(eps.map((u) => u.hits)).toEqual([3, 3, 3]);
  });

  it('RANDOM and LEAST_REQUEST spread over every endpoint', async () => {
    for (const simple of ['RANDOM', 'LEAST_REQUEST'] as const) {
      const eps = await three();
      const p = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', { lb: { simple } })], endpoints: { c: eps.map((u) => endpoint(u.port)) } }), { random: seeded(42) });
      for (let i = 0; i < 60; i++) await send(p.ports.outbound!, { headers: { host: 'svc' } });
      await p.close({ drainMs: 0 });
      for (const u of eps) expect(u.hits).toBeGreaterThan(5);
    }
  });

  it('LEAST_REQUEST avoids a busy endpoint', async () => {
    const slow = await upstream((_q, res) => { cleanups.push(() => { res.end(); }); });
    const fast = await upstream();
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(slow.port), endpoint(fast.port)] } }));
    // Park one request on the slow endpoint (requests to the fast one complete at once).
    let sent = 0;
    while (slow.hits < 1) {
      void send(proxy.ports.outbound!, { headers: { host: 'svc' } }).catch(() => undefined);
      sent++;
      await waitFor(() => slow.hits + fast.hits >= sent, 2000, 'request arrival');
    }
    const before = fast.hits;
    for (let i = 0; i < 20; i++) await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(fast.hits - before).toBe(20);
  });

  it('consistentHash on a header, cookie, query parameter and source IP keeps a key on one endpoint', async () => {
    const keys: Array<[Parameters<typeof cluster>[1], (k: string) => { path?: string; headers: Record<string, string> }]> = [
      [{ lb: { consistentHash: { httpHeaderName: 'x-user', minimumRingSize: 1024 } } }, (k) => ({ headers: { host: 'svc', 'x-user': k } })],
      [{ lb: { consistentHash: { httpCookie: { name: 'sess' }, minimumRingSize: 1024 } } }, (k) => ({ headers: { host: 'svc', cookie: `a=1; sess=${k}` } })],
      [{ lb: { consistentHash: { httpQueryParameterName: 'u', minimumRingSize: 1024 } } }, (k) => ({ path: `/?u=${k}`, headers: { host: 'svc' } })],
    ];
    for (const [def, req] of keys) {
      const eps = await three();
      const p = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', def)], endpoints: { c: eps.map((u) => endpoint(u.port)) } }));
      const owners = new Set<string>();
      for (let k = 0; k < 30; k++) {
        const seenBy = new Set<string>();
        for (let i = 0; i < 4; i++) seenBy.add((await send(p.ports.outbound!, req(`user-${k}`))).headers['x-upstream'] as string);
        expect(seenBy.size).toBe(1);
        owners.add([...seenBy][0]);
      }
      expect(owners.size).toBeGreaterThan(1);
      await p.close({ drainMs: 0 });
    }
    const eps = await three();
    const p = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', { lb: { consistentHash: { useSourceIp: true, minimumRingSize: 64 } } })], endpoints: { c: eps.map((u) => endpoint(u.port)) } }));
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await send(p.ports.outbound!, { headers: { host: 'svc' } })).headers['x-upstream'] as string);
    expect(seen.size).toBe(1);
    await p.close({ drainMs: 0 });
  });
});

describe('circuit breaking and outlier detection', () => {
  it('answers 503 UO beyond maxConnections + http1MaxPendingRequests', async () => {
    const held: Array<() => void> = [];
    const a = await upstream((_q, res) => { held.push(() => res.end('done')); });
    cleanups.push(() => held.forEach((h) => h()));
    proxy = await startSidecar(snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }],
      clusters: [cluster('c', { connectionPool: { ...DEFAULT_POOL, maxConnections: 1, http1MaxPendingRequests: 1 } })],
      endpoints: { c: [endpoint(a.port)] },
    }));
    const first = send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    const second = send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    await waitFor(() => a.hits === 1, 2000, 'first request at upstream');
    await waitFor(() => proxy!.clusters().find((c) => c.name === 'c')!.activeRequests === 2, 2000, 'second request pending');
    const third = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(third.status).toBe(503);
    expect(third.headers['x-trellis-response-flags']).toBe('UO');
    held.splice(0).forEach((h) => h());
    await waitFor(() => a.hits === 2, 2000, 'pending request served');
    held.splice(0).forEach((h) => h());
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });

  it('ejects an endpoint after consecutive 5xx errors and returns it after the ejection time', async () => {
    let broken = true;
    const bad = await upstream((_q, res) => { res.writeHead(broken ? 500 : 200); res.end(); });
    const good = await upstream();
    proxy = await startSidecar(snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }],
      clusters: [cluster('c', { lb: { simple: 'ROUND_ROBIN' }, outlierDetection: { consecutive5xxErrors: 2, consecutiveGatewayErrors: 0, intervalMs: 20, baseEjectionTimeMs: 300, maxEjectionPercent: 100, minHealthPercent: 0 } })],
      endpoints: { c: [endpoint(bad.port), endpoint(good.port)] },
    }));
    for (let i = 0; i < 4; i++) await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(bad.hits).toBe(2);
    const view = proxy.clusters().find((c) => c.name === 'c')!;
    expect(view.endpoints.find((e) => e.port === bad.port)!.ejected).toBe(true);
    const before = bad.hits;
    for (let i = 0; i < 10; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
    expect(bad.hits).toBe(before);
    broken = false;
    await waitFor(() => !proxy!.clusters().find((c) => c.name === 'c')!.endpoints.find((e) => e.port === bad.port)!.ejected, 3000, 'un-ejection');
    for (let i = 0; i < 4; i++) await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(bad.hits).toBeGreaterThan(before);
  });

  it('respects maxEjectionPercent and answers 503 UH when no healthy host remains', async () => {
    const bad = await upstream((_q, res) => { res.writeHead(502); res.end(); });
    proxy = await startSidecar(snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }],
      clusters: [cluster('c', { outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 30000, maxEjectionPercent: 100, minHealthPercent: 0 } })],
      endpoints: { c: [endpoint(bad.port)] },
    }));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(502);
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(503);
    expect(r.headers['x-trellis-response-flags']).toBe('UH');
    // With maxEjectionPercent 10 the only host is never ejected.
    proxy.applySnapshot(snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c2') })] }],
      clusters: [cluster('c2', { outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 1, intervalMs: 1000, baseEjectionTimeMs: 30000, maxEjectionPercent: 10, minHealthPercent: 0 } })],
      endpoints: { c2: [endpoint(bad.port)] },
    }));
    for (let i = 0; i < 3; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(502);
  });
});

describe('websocket pass-through', () => {
  it('upgrades through the proxy and relays frames both ways', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`echo ${m.toString()} via ${req.headers.host}`)));
    const port = (wss.address() as AddressInfo).port;
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['chat'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(port)] } }));
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.ports.outbound}/socket`, { headers: { host: 'chat' } });
    cleanups.push(() => ws.terminate());
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    const reply = new Promise<string>((r) => ws.once('message', (m) => r(m.toString())));
    ws.send('hi');
    expect(await reply).toBe('echo hi via chat');
  });
});
