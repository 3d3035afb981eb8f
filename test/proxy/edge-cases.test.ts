import { afterEach, describe, expect, it } from '@jest/globals';
import { Agent } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Proxy } from '../../src/proxy/index.js';
import type { Route } from '../../src/mesh/snapshot.js';
import { ClusterRuntime } from '../../src/proxy/upstream/cluster.js';
import { cluster, endpoint, route, snapshot, toCluster, DEFAULT_POOL, NO_RETRY } from './fixtures.js';
import { send, startSidecar, startUpstream, type Upstream } from './helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
afterEach(async () => {
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
});

async function upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const u = await startUpstream(...args);
  ups.push(u);
  return u;
}

function one(r: Partial<Route>, port: number, def: Parameters<typeof cluster>[1] = {}) {
  return snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c'), ...r })] }], clusters: [cluster('c', def)], endpoints: { c: [endpoint(port)] } });
}

describe('edge cases', () => {
  it('retries an upstream reset with retryOn reset, and answers 503 UC without a retry policy', async () => {
    const a = await upstream((req, res, _b, up) => { if (up.hits % 2 === 1) req.socket.destroy(); else res.end('second'); });
    proxy = await startSidecar(one({ retry: { attempts: 1, retryOn: ['reset'], retriableStatusCodes: [], backoffBaseMs: 1 } }, a.port));
    const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'x' });
    expect(r.body).toBe('second');
    expect(a.hits).toBe(2);
    proxy.applySnapshot(one({ retry: NO_RETRY }, a.port));
    const failed = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'x' });
    expect(failed.status).toBe(503);
    expect(failed.headers['x-trellis-response-flags']).toBe('UC');
  });

  it('streams a body larger than the replay buffer on a route with retries (no retry, body intact)', async () => {
    const a = await upstream((req, res) => { res.writeHead(200); req.pipe(res); }, { bufferBody: false });
    proxy = await startSidecar(one({ retry: { attempts: 2, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 1 } }, a.port));
    const big = Buffer.alloc(1024 * 1024 + 7, 'xyz');
    const r = await send(proxy.ports.outbound!, { method: 'PUT', headers: { host: 'svc', 'transfer-encoding': 'chunked' }, body: big });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(big.length);
    expect(a.hits).toBe(1);
  });

  it('answers HEAD with the upstream headers and no body', async () => {
    const a = await upstream((_q, res) => { res.writeHead(200, { 'content-length': '11', 'x-h': '1' }); res.end(); });
    proxy = await startSidecar(one({}, a.port));
    const r = await send(proxy.ports.outbound!, { method: 'HEAD', headers: { host: 'svc' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('11');
    expect(r.headers['x-h']).toBe('1');
    expect(r.body).toBe('');
  });

  it('maxRequestsPerConnection 1 disables upstream keep-alive', async () => {
    const sockets = new Set<unknown>();
    const a = await upstream((req, res) => { sockets.add(req.socket); res.end('ok'); });
    proxy = await startSidecar(one({}, a.port, { connectionPool: { ...DEFAULT_POOL, maxRequestsPerConnection: 1 } }));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' }, agent })).status).toBe(200);
    agent.destroy();
    expect(sockets.size).toBe(5);
  });

  it('generates the consistent-hash cookie when it has a TTL and is absent, then sticks to it', async () => {
    const eps = [await upstream(), await upstream(), await upstream()];
    proxy = await startSidecar(snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }],
      clusters: [cluster('c', { lb: { consistentHash: { httpCookie: { name: 'affinity', path: '/', ttlMs: 60000 }, minimumRingSize: 256 } } })],
      endpoints: { c: eps.map((u) => endpoint(u.port)) },
    }));
    const first = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    const setCookie = (first.headers['set-cookie'] ?? [])[0];
    expect(setCookie).toMatch(/^affinity=[0-9a-f]+; Max-Age=60; Path=\/; HttpOnly$/);
    const cookie = setCookie.split(';')[0];
    for (let i = 0; i < 5; i++) {
      const r = await send(proxy.ports.outbound!, { headers: { host: 'svc', cookie } });
      expect(r.headers['x-upstream']).toBe(first.headers['x-upstream']);
      expect(r.headers['set-cookie']).toBeUndefined();
    }
  });
});

describe('upstream TLS origination', () => {
  it('originates TLS (DestinationRule SIMPLE) with the CA file and SNI, and refuses a snapshot whose CA file is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-upstream-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=up.local', '-addext', 'subjectAltName=DNS:up.local'], { stdio: 'ignore' });
      const server = createHttpsServer({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }, (req, res) => res.end(`tls ${(req.socket as TLSSocket).servername}`));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as AddressInfo).port;
      try {
        proxy = await startSidecar(one({}, port, { tls: { mode: 'SIMPLE', caCertificates: join(dir, 'cert.pem'), sni: 'up.local', subjectAltNames: [] } }));
        const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
        expect(`${r.status} ${r.headers['x-trellis-response-flags'] ?? ''} ${r.body}`).toBe('200  tls up.local');
        const bad = proxy.applySnapshot(one({}, port, { tls: { mode: 'SIMPLE', caCertificates: join(dir, 'missing.pem'), subjectAltNames: [] } }));
        expect(bad.ok).toBe(false);
        expect(!bad.ok && bad.error).toMatch(/tls\.caCertificates .*missing\.pem/);
        await proxy.close({ drainMs: 0 });
        proxy = undefined;

        // The TLS extension supplies client TLS; reloadTls picks up rotated credentials without a new snapshot.
        let opts: Record<string, unknown> = { ca: readFileSync(join(dir, 'cert.pem'), 'utf8'), servername: 'up.local', minVersion: 'TLSv1.2' };
        let calls = 0;
        proxy = await startSidecar(one({}, port), { tls: { serverContext: () => undefined, clientContext: () => { calls++; return opts; } } });
        expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).body).toBe('tls up.local');
        expect(proxy.clusters()[0].endpoints[0].totalRequests).toBe(1);
        const before = calls;
        opts = { ...opts, minVersion: 'TLSv1.3' };
        proxy.reloadTls();
        expect(calls).toBe(before + 1);
        expect(proxy.clusters()[0].endpoints[0].totalRequests).toBe(0);
        expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).body).toBe('tls up.local');
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cluster runtime (pure)', () => {
  it('falls back to every host (panic) when healthy hosts drop below minHealthPercent', () => {
    let now = 0;
    const c = new ClusterRuntime(
      cluster('c', { outlierDetection: { consecutive5xxErrors: 1, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 100, maxEjectionPercent: 100, minHealthPercent: 60 } }),
      'k',
      { connections: null, connectTimeoutMs: 1000, maxRequestsPerConnection: 0, idleTimeoutMs: 1000, scheme: 'http' },
      () => now,
    );
    c.setEndpoints([endpoint(1), endpoint(2), endpoint(3)]);
    c.report(c.hosts[0], 500, false);
    expect(c.candidates().map((h) => h.endpoint.port)).toEqual([2, 3]);
    c.report(c.hosts[1], 503, false);
    // 1 of 3 healthy (33%) < 60%: panic, all hosts serve.
    expect(c.candidates()).toHaveLength(3);
    now = 150;
    c.sweep();
    expect(c.candidates()).toHaveLength(3);
    expect(c.hosts.every((h) => !h.outlier.ejected)).toBe(true);
    // Ejection time grows with the number of ejections.
    c.report(c.hosts[0], 500, false);
    expect(c.hosts[0].outlier.ejectedUntil).toBe(150 + 200);
    void c.destroy();
  });
});
