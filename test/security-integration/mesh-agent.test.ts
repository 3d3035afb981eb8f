import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { createDiscoveryServer, type DiscoveryServer } from '../../src/discovery/index.js';
import type { ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import { startMeshAgent, type MeshAgent } from '../../src/proxy/agent.js';
import type { WorkloadEndpoint } from '../../src/render/types.js';
import { redactOptions } from '../../src/security/index.js';
import { cluster, route, snapshot, toCluster } from '../proxy/fixtures.js';
import { sidecarIdentity, startTestMeshCa, until, type TestMeshCa } from './helpers/mesh-ca.js';
import { formatSecret } from '../../src/cli/commands/proxy-config.js';

/**
 * startMeshAgent({security}) end to end: bootstrap with the join token over TLS, a discovery server
 * that records the reported certificate (what `proxy-config secret` shows), real mTLS between the
 * two agents, and a short-lived certificate rotating under traffic, each renewal over mutual TLS
 * with the current certificate (the token is used once per proxy).
 */
const RATINGS_CLUSTER = 'outbound|9080||ratings.bookinfo.svc.cluster.local';
const TTL_MS = 6000;
let mesh: TestMeshCa;
let caLog = '';
let app: Server;
let discovery: DiscoveryServer;
const agents: MeshAgent[] = [];
let ratings: MeshAgent;
let productpage: MeshAgent;

const identity = (workload: string): ProxyIdentity => sidecarIdentity('c1', 'bookinfo', workload, `bookinfo-${workload}`);
const logged = (msg: string): number => caLog.split('\n').filter((line) => line.includes(`"msg":"${msg}"`)).length;

function render(proxy: ProxyIdentity, endpoints: WorkloadEndpoint[]): ProxySnapshot {
  const ratingsEndpoints = endpoints
    .filter((e) => e.service === 'ratings')
    .map((e) => ({ address: e.address, port: e.port, labels: e.labels, tlsMode: e.tlsMode, serviceAccount: e.serviceAccount, namespace: e.namespace, weight: 1 }));
  const s = snapshot({
    hosts: [{ domains: ['ratings', 'ratings:9080'], routes: [route({ action: toCluster(RATINGS_CLUSTER) })] }],
    clusters: [cluster(RATINGS_CLUSTER, { service: 'ratings.bookinfo.svc.cluster.local', port: 9080 })],
    endpoints: { [RATINGS_CLUSTER]: ratingsEndpoints },
  });
  return { ...s, proxy, inbound: { ...s.inbound, mtlsMode: 'STRICT' } };
}

async function freePort(): Promise<number> {
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  return port;
}

const listen = (s: Server): Promise<number> => new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host: 'ratings:9080' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      caLog += chunk.toString();
      done();
    },
  });
  mesh = await startTestMeshCa({ cluster: 'c1', ttlMs: TTL_MS, logger: pino({ ...redactOptions }, sink) });
  const dir = mesh.dir;
  app = createServer((_req, res) => res.end('ok'));
  const appPort = await listen(app);
  discovery = createDiscoveryServer({ render, debounceMs: 10 });
  const { url } = await discovery.listen(0, '127.0.0.1');
  const security = mesh.options;

  const inboundPort = await freePort();
  ratings = await startMeshAgent({
    proxy: { mode: 'sidecar', bindAddress: '127.0.0.1', inboundPort, appPort, stateDir: join(dir, 'ratings') },
    discovery: { url, identity: identity('ratings'), endpoint: { address: '127.0.0.1', port: inboundPort }, heartbeatMs: 200 },
    security,
  });
  agents.push(ratings);
  productpage = await startMeshAgent({
    proxy: { mode: 'sidecar', bindAddress: '127.0.0.1', outboundPort: 0, stateDir: join(dir, 'productpage') },
    discovery: { url, identity: identity('productpage'), heartbeatMs: 200 },
    security,
  });
  agents.push(productpage);
}, 30_000);

afterAll(async () => {
  for (const a of agents) await a.stop({ drainMs: 0 });
  await discovery?.close();
  await new Promise((r) => app?.close(r));
  await mesh?.close();
});

describe('startMeshAgent with security', () => {
  test('discovery records the certificate each proxy reports (proxy-config secret)', async () => {
    const status = await until('certificates reported', () => {
      const all = discovery.status();
      return all.length === 2 && all.every((p) => p.certificate?.spiffeId) ? all : undefined;
    });
    expect(status.map((p) => p.certificate?.spiffeId).sort()).toEqual([
      'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage',
      'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings',
    ]);
    expect(status.find((p) => p.id.endsWith('ratings/0'))?.certificate?.serialNumber).toBe(ratings.security!.certificateInfo().serialNumber);
    // Bound to the join token's cluster, and `proxy-config secret` shows it.
    expect(status.map((p) => p.certificate?.cluster)).toEqual(['c1', 'c1']);
    const table = formatSecret({ proxy: status[0], snapshot: null }).split('\n');
    expect(table[0]).toMatch(/SPIFFE ID\s+CLUSTER$/);
    expect(table[1]).toMatch(/spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/bookinfo-\w+\s+c1$/);
  });

  test('requests cross mTLS (STRICT inbound) and keep succeeding while short-lived certificates rotate', async () => {
    const outbound = productpage.proxy.ports.outbound!;
    await until('productpage has the ratings endpoint', () => productpage.proxy.currentSnapshot()?.endpoints.some((e) => e.endpoints.length > 0));
    // STRICT: plaintext is reset without an HTTP answer.
    await expect(get(ratings.proxy.ports.inbound!, '/plaintext')).rejects.toMatchObject({ code: 'ECONNRESET' });
    const firstServer = ratings.security!.certificateInfo().serialNumber;
    const firstClient = productpage.security!.certificateInfo().serialNumber;
    const statuses: number[] = [];
    // A 6 s certificate (backdated by the CA's clock-skew allowance) is past half-life at once: both
    // sides rotate every second (the store's minimum interval); keep traffic flowing across it.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      statuses.push(await get(outbound, `/r/${statuses.length}`));
      const rotated = ratings.security!.certificateInfo().serialNumber !== firstServer && productpage.security!.certificateInfo().serialNumber !== firstClient;
      if (rotated && statuses.length > 20) break;
      await delay(50);
    }
    expect(ratings.security!.certificateInfo().serialNumber).not.toBe(firstServer);
    expect(productpage.security!.certificateInfo().serialNumber).not.toBe(firstClient);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Rotations are renewals over mutual TLS, none refused (renewal.test.ts counts token exchanges
    // exactly; here a renewal slowed past the 6 s lifetime by a loaded machine may use the token).
    const refusals = caLog.split('\n').filter((line) => line.includes('refused')).map((line) => (JSON.parse(line) as { reason?: string }).reason);
    expect(refusals).toEqual([]);
    expect(logged('certificate renewed')).toBeGreaterThanOrEqual(2);
    // reloadTls rebuilt productpage's upstream pools after each rotation; requests still get through.
    expect(await get(outbound, '/after-rotation')).toBe(200);
    await until('discovery sees the rotated certificate', () =>
      discovery.status().find((p) => p.id.endsWith('ratings/0'))?.certificate?.serialNumber === ratings.security!.certificateInfo().serialNumber,
    );
  }, 30_000);
});
