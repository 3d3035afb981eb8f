import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync, renameSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { startProxy, watchConfigFile, type Proxy, type ConfigWatcher } from '../../src/proxy/index.js';
import { cluster, endpoint, route, snapshot, toCluster } from './fixtures.js';
import { freePort, send, startSidecar, startUpstream, waitFor, type Upstream } from './helpers.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
const dirs: string[] = [];
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-proxy-'));
  dirs.push(d);
  return d;
}

async function upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const u = await startUpstream(...args);
  ups.push(u);
  return u;
}

function simple(port: number, body?: string): ProxySnapshot {
  return snapshot({
    hosts: [{ domains: ['svc'], routes: body ? [route({ action: { kind: 'directResponse', status: 200, body } })] : [route({ action: toCluster('c') })] }],
    clusters: [cluster('c')],
    endpoints: { c: [endpoint(port)] },
  });
}

async function admin(p: Proxy, path: string): Promise<{ status: number; body: string; json: () => any }> {
  const r = await send(p.ports.admin!, { path });
  return { status: r.status, body: r.body, json: () => JSON.parse(r.body) };
}

describe('snapshot validation and the admin API', () => {
  it('refuses a bad snapshot, keeps the last good one and shows the reason', async () => {
    const a = await upstream();
    proxy = await startSidecar(undefined);
    expect((await admin(proxy, '/ready')).status).toBe(503);
    expect(proxy.applySnapshot(simple(a.port)).ok).toBe(true);
    expect((await admin(proxy, '/ready')).status).toBe(200);
    const good = proxy.status().snapshotVersion;

    const bad = simple(a.port);
    (bad.routeConfigs[0].virtualHosts[0].routes[0].action as { destinations: Array<{ cluster: string }> }).destinations[0].cluster = 'missing';
    const r1 = proxy.applySnapshot(bad);
    expect(r1.ok).toBe(false);
    const badRegex = simple(a.port);
    badRegex.routeConfigs[0].virtualHosts[0].routes[0].match = [{ uri: { regex: '([' } }];
    const r2 = proxy.applySnapshot(badRegex, 'test');
    expect(r2.ok).toBe(false);
    expect(proxy.status().snapshotVersion).toBe(good);
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);

    const info = (await admin(proxy, '/server_info')).json();
    expect(info.snapshotHash).toBe(good);
    expect(info.meshVersion).toBe('1.22.0');
    expect(info.lastRejected.reason).toMatch(/routes\[0\]\.match\[0\]\.uri\.regex.*does not compile/);
    expect(info.lastRejected.source).toBe('test');
    expect(typeof info.uptimeSeconds).toBe('number');

    const dump = (await admin(proxy, '/config_dump')).json();
    expect(dump.version).toBe(good);
    const clusters = (await admin(proxy, '/clusters')).json();
    expect(clusters[0].endpoints[0]).toMatchObject({ port: a.port, healthy: true, totalRequests: 1 });
    const prom = await admin(proxy, '/stats/prometheus');
    expect(prom.body).toMatch(/istio_requests_total\{[^}]*response_code="200"[^}]*\} 1/);
  });

  it('redacts key material in /config_dump', async () => {
    const s = simple(1);
    s.clusters[0].tls = { mode: 'DISABLE', subjectAltNames: [], privateKey: '/secret/key.pem' };
    proxy = await startSidecar(s);
    const dump = (await admin(proxy, '/config_dump')).json();
    expect(dump.clusters[0].tls.privateKey).toBe('[redacted]');
  });
});

describe('state dir and config file', () => {
  it('serves the persisted snapshot after a restart, before any control plane answers', async () => {
    const a = await upstream();
    const stateDir = tempDir();
    const p1 = await startSidecar(simple(a.port), { stateDir });
    expect(existsSync(join(stateDir, 'snapshot.json'))).toBe(true);
    await p1.close({ drainMs: 0 });
    proxy = await startProxy({ mode: 'sidecar', outboundPort: 0, adminPort: 0, bindAddress: '127.0.0.1', stateDir });
    expect(proxy.status().snapshotSource).toBe('state-dir');
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(200);
    expect(a.hits).toBe(1);
  });

  it('applies --config on change (atomic rename included), refuses an invalid file and keeps the last good', async () => {
    const dir = tempDir();
    const file = join(dir, 'snapshot.json');
    writeFileSync(file, JSON.stringify(simple(1, 'one')));
    proxy = await startSidecar(undefined);
    const p = proxy;
    const w: ConfigWatcher = watchConfigFile(file, (v, s) => p.applySnapshot(v, s), { pollMs: 50, onUnparsable: (r, s) => p.reportRejected(r, s) });
    cleanups.push(() => w.close());
    await w.reload();
    expect((await send(p.ports.outbound!, { headers: { host: 'svc' } })).body).toBe('one');
    writeFileSync(`${file}.tmp`, JSON.stringify(simple(1, 'two')));
    renameSync(`${file}.tmp`, file);
    await waitFor(async () => (await send(p.ports.outbound!, { headers: { host: 'svc' } })).body === 'two', 5000, 'second snapshot');
    writeFileSync(file, '{ not json');
    await waitFor(() => p.status().lastRejected !== undefined, 5000, 'rejection');
    expect(p.status().lastRejected!.reason).toMatch(/snapshot\.json/);
    expect((await send(p.ports.outbound!, { headers: { host: 'svc' } })).body).toBe('two');
  });
});

describe('gateway mode', () => {
  it('terminates TLS (SIMPLE) with certificate files and redirects HTTP to HTTPS', async () => {
    const dir = tempDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=gw.example', '-addext', 'subjectAltName=DNS:gw.example'], { stdio: 'ignore' });
    const a = await upstream();
    const [httpsPort, httpPort] = [await freePort(), await freePort()];
    const routeConfig = (name: string) => ({ name, virtualHosts: [{ name: 'gw', domains: ['gw.example', `gw.example:${httpsPort}`], routes: [route({ action: toCluster('c') })] }] });
    const snap = snapshot({
      mode: 'gateway',
      routeConfigs: [routeConfig(`https.${httpsPort}`), routeConfig(`http.${httpPort}`)],
      listeners: [
        { name: `0.0.0.0_${httpsPort}`, port: httpsPort, bind: '127.0.0.1', protocol: 'HTTPS', hosts: ['gw.example'], tls: { mode: 'SIMPLE', serverCertificate: join(dir, 'cert.pem'), privateKey: join(dir, 'key.pem') }, routeConfig: `https.${httpsPort}` },
        { name: `0.0.0.0_${httpPort}`, port: httpPort, bind: '127.0.0.1', protocol: 'HTTP', hosts: ['gw.example'], httpsRedirect: true, routeConfig: `http.${httpPort}` },
        { name: '0.0.0.0_mutual', port: 0, bind: '127.0.0.1', protocol: 'HTTPS', hosts: ['gw.example'], tls: { mode: 'MUTUAL', credentialName: 'gw-cred' }, routeConfig: `https.${httpsPort}` },
      ],
      clusters: [cluster('c')],
      endpoints: { c: [endpoint(a.port)] },
    });
    proxy = await startProxy({ mode: 'gateway', adminPort: 0, initialSnapshot: snap });
    expect(proxy.status().snapshotVersion).toBe(snap.version);
    // A listener mode this proxy does not terminate is skipped and reported, not fatal.
    expect(proxy.status().listenerErrors).toEqual(['listener 0.0.0.0_mutual: tls.mode MUTUAL is not served (SIMPLE only)']);
    expect(Object.keys(proxy.ports.gateway).sort()).toEqual([`0.0.0.0_${httpPort}`, `0.0.0.0_${httpsPort}`].sort());
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path: '/productpage', servername: 'gw.example', headers: { host: 'gw.example' }, ca: readFileSync(join(dir, 'cert.pem')), agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(`${res.statusCode} ${b}`));
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe(`200 hello from ${a.port}`);
    expect(a.seen[0].headers['x-forwarded-proto']).toBe('https');
    const redirect = await send(httpPort, { path: '/x', headers: { host: 'gw.example' } });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('https://gw.example/x');

    const missing = structuredClone(snap);
    missing.version = 'ffffffffffffffff';
    missing.listeners[0].tls!.serverCertificate = join(dir, 'nope.pem');
    const r = proxy.applySnapshot(missing);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/serverCertificate .*nope\.pem/);
  });
});
