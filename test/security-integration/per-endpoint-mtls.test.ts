import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Endpoint, ProxySnapshot, UpstreamTls } from '../../src/mesh/snapshot.js';
import type { ProxySecurity } from '../../src/proxy/mesh-security.js';
import { startProxy, type Proxy } from '../../src/proxy/server.js';
import { connectionSecurityPolicy, createMeshListener, handToServer, peerSecurityOf, type MeshListener } from '../../src/security/index.js';
import { cluster, route, snapshot, toCluster } from '../proxy/fixtures.js';
import { closeServer, listen } from '../security/helpers/mesh.js';
import { httpGet as get, sidecarIdentity, startTestMeshCa, type TestMeshCa } from './helpers/mesh-ca.js';

/**
 * Auto mTLS decided per endpoint (Istio's transport socket match on `security.istio.io/tlsMode`):
 * one service with a sidecar endpoint (a real mesh listener, PERMISSIVE, that reports what the
 * connection carried) and a plain endpoint (a bare HTTP server). The client is a real Trellis
 * sidecar with a bootstrapped workload certificate.
 */
const TRUST_DOMAIN = 'cluster.local';
const CLIENT_PRINCIPAL = 'cluster.local/ns/bookinfo/sa/bookinfo-productpage';
const RATINGS = 'outbound|9080||ratings.bookinfo.svc.cluster.local';
const DETAILS = 'outbound|9080||details.bookinfo.svc.cluster.local';
const DETAILS_PLAIN = 'outbound|9080||details-plain.bookinfo.svc.cluster.local';

interface Seen {
  endpoint: 'sidecar' | 'plain';
  mtls: boolean;
  principal?: string;
}

let mesh: TestMeshCa;
let clientSecurity: ProxySecurity;
let client: Proxy;
let meshListener: MeshListener;
let sidecarEcho: Server;
let plain: Server;
let app: Server;
let details: Proxy;
let sidecarPort: number;
let plainPort: number;

const identity = (workload: string, serviceAccount: string) => sidecarIdentity('c1', 'bookinfo', workload, serviceAccount);

const sidecarEndpoint = (port: number, serviceAccount: string): Endpoint => ({
  address: '127.0.0.1', port, labels: { 'security.istio.io/tlsMode': 'istio' }, tlsMode: 'istio', serviceAccount, namespace: 'bookinfo', weight: 1,
});
const plainEndpoint = (port: number): Endpoint => ({ address: '127.0.0.1', port, labels: {}, tlsMode: 'disabled', weight: 1 });

/** The client's snapshot: `ratings` has both endpoints (round robin); `details` reaches a real sidecar as istio and as plain. */
function clientSnapshot(opts: { ratingsTls?: UpstreamTls; ratingsEndpoints?: Endpoint[]; enableAutoMtls?: boolean } = {}): ProxySnapshot {
  const s = snapshot({
    hosts: [
      { domains: ['ratings:9080'], routes: [route({ action: toCluster(RATINGS) })] },
      { domains: ['details:9080'], routes: [route({ action: toCluster(DETAILS) })] },
      { domains: ['details-plain:9080'], routes: [route({ action: toCluster(DETAILS_PLAIN) })] },
    ],
    clusters: [
      cluster(RATINGS, { service: 'ratings.bookinfo.svc.cluster.local', port: 9080, lb: { simple: 'ROUND_ROBIN' }, ...(opts.ratingsTls ? { tls: opts.ratingsTls } : {}) }),
      cluster(DETAILS, { service: 'details.bookinfo.svc.cluster.local', port: 9080 }),
      cluster(DETAILS_PLAIN, { service: 'details-plain.bookinfo.svc.cluster.local', port: 9080 }),
    ],
    endpoints: {
      [RATINGS]: opts.ratingsEndpoints ?? [sidecarEndpoint(sidecarPort, 'bookinfo-ratings'), plainEndpoint(plainPort)],
      [DETAILS]: [sidecarEndpoint(details.ports.inbound!, 'bookinfo-details')],
      [DETAILS_PLAIN]: [plainEndpoint(details.ports.inbound!)],
    },
  });
  return { ...s, proxy: identity('productpage', 'bookinfo-productpage'), mesh: { ...s.mesh, enableAutoMtls: opts.enableAutoMtls ?? true } };
}

function apply(s: ProxySnapshot): void {
  // As the mesh agent does: the security layer sees the snapshot before the proxy applies it.
  clientSecurity.observeSnapshot(s);
  const result = client.applySnapshot(s);
  expect(result).toMatchObject({ ok: true });
}

/** `count` requests to ratings through the client sidecar; what each endpoint saw. */
async function ratingsRound(count: number): Promise<Array<{ status: number; seen?: Seen }>> {
  const out: Array<{ status: number; seen?: Seen }> = [];
  for (let i = 0; i < count; i++) {
    const res = await get(client.ports.outbound!, 'ratings:9080', `/r/${i}`);
    out.push({ status: res.status, seen: res.status === 200 ? (JSON.parse(res.body) as Seen) : undefined });
  }
  return out;
}

beforeAll(async () => {
  mesh = await startTestMeshCa({ cluster: 'c1', trustDomain: TRUST_DOMAIN });
  const ratingsSecurity = await mesh.security(identity('ratings', 'bookinfo-ratings'));
  const detailsSecurity = await mesh.security(identity('details', 'bookinfo-details'));
  clientSecurity = await mesh.security(identity('productpage', 'bookinfo-productpage'));

  // The sidecar endpoint: a PERMISSIVE mesh listener, so a plaintext client would get through and be seen as such.
  sidecarEcho = createServer((req, res) => {
    const security = peerSecurityOf(req.socket as Socket);
    res.end(JSON.stringify({ endpoint: 'sidecar', mtls: security.mtls, principal: security.mtls ? security.principal : undefined, policy: connectionSecurityPolicy(security), path: req.url }));
  });
  meshListener = createMeshListener({ store: ratingsSecurity.store, modeFor: () => 'PERMISSIVE', onConnection: handToServer(sidecarEcho) });
  sidecarPort = await listen(meshListener.server);

  // The plain endpoint: a bare HTTP server; a TLS ClientHello would not parse as HTTP.
  plain = createServer((req, res) => res.end(JSON.stringify({ endpoint: 'plain', mtls: false, path: req.url })));
  plainPort = await listen(plain);

  // A real Trellis sidecar (PERMISSIVE) whose telemetry tells what each inbound request used.
  app = createServer((_req, res) => res.end('details'));
  const appPort = await listen(app);
  details = await startProxy({ mode: 'sidecar', bindAddress: '127.0.0.1', inboundPort: 0, appPort, appHost: '127.0.0.1', tls: detailsSecurity.tls, inboundFilter: detailsSecurity.inboundFilter });
  const detailsSnapshot = snapshot({});
  expect(details.applySnapshot({ ...detailsSnapshot, proxy: identity('details', 'bookinfo-details') }).ok).toBe(true);

  client = await startProxy({ mode: 'sidecar', bindAddress: '127.0.0.1', outboundPort: 0, tls: clientSecurity.tls, inboundFilter: clientSecurity.inboundFilter });
  apply(clientSnapshot());
}, 30_000);

afterAll(async () => {
  await client?.close({ drainMs: 0 });
  await details?.close({ drainMs: 0 });
  await meshListener?.close();
  for (const s of [sidecarEcho, plain, app]) if (s) await closeServer(s);
  await mesh?.close();
});

describe('auto mTLS per endpoint', () => {
  test('one service, a sidecar endpoint and a plain one: mTLS with the client SPIFFE identity to the first, plaintext to the second, both succeed', async () => {
    const results = await ratingsRound(4);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const toSidecar = results.filter((r) => r.seen?.endpoint === 'sidecar').map((r) => r.seen);
    const toPlain = results.filter((r) => r.seen?.endpoint === 'plain').map((r) => r.seen);
    expect(toSidecar).toHaveLength(2);
    expect(toPlain).toHaveLength(2);
    for (const seen of toSidecar) expect(seen).toMatchObject({ mtls: true, principal: CLIENT_PRINCIPAL });
    for (const seen of toPlain) expect(seen).toMatchObject({ mtls: false });
  });

  test('a DestinationRule tls mode overrides auto mTLS: DISABLE sends plaintext to the sidecar endpoint too', async () => {
    apply(clientSnapshot({ ratingsTls: { mode: 'DISABLE', subjectAltNames: [] } }));
    const results = await ratingsRound(4);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results.map((r) => r.seen?.mtls)).toEqual([false, false, false, false]);
    expect(new Set(results.map((r) => r.seen?.endpoint))).toEqual(new Set(['sidecar', 'plain']));
  });

  test('a DestinationRule ISTIO_MUTUAL overrides auto mTLS: mTLS toward the plain endpoint too, which cannot answer', async () => {
    apply(clientSnapshot({ ratingsTls: { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings'] } }));
    const results = await ratingsRound(4);
    const ok = results.filter((r) => r.status === 200);
    expect(ok.map((r) => r.seen)).toEqual([
      { endpoint: 'sidecar', mtls: true, principal: CLIENT_PRINCIPAL, policy: 'mutual_tls', path: expect.any(String) },
      { endpoint: 'sidecar', mtls: true, principal: CLIENT_PRINCIPAL, policy: 'mutual_tls', path: expect.any(String) },
    ]);
    expect(results.filter((r) => r.status !== 200).every((r) => r.status >= 500)).toBe(true);
  });

  test('enableAutoMtls false: plaintext to every endpoint', async () => {
    apply(clientSnapshot({ enableAutoMtls: false }));
    const results = await ratingsRound(4);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results.map((r) => r.seen?.mtls)).toEqual([false, false, false, false]);
  });

  test('an endpoint that gains a sidecar (same address, tlsMode disabled → istio) gets mTLS on its next connection', async () => {
    apply(clientSnapshot({ ratingsEndpoints: [plainEndpoint(sidecarPort)] }));
    const before = await ratingsRound(2);
    expect(before.map((r) => r.seen)).toEqual([expect.objectContaining({ endpoint: 'sidecar', mtls: false }), expect.objectContaining({ endpoint: 'sidecar', mtls: false })]);
    apply(clientSnapshot({ ratingsEndpoints: [sidecarEndpoint(sidecarPort, 'bookinfo-ratings')] }));
    const after = await ratingsRound(2);
    expect(after.map((r) => r.seen)).toEqual([
      expect.objectContaining({ endpoint: 'sidecar', mtls: true, principal: CLIENT_PRINCIPAL }),
      expect.objectContaining({ endpoint: 'sidecar', mtls: true, principal: CLIENT_PRINCIPAL }),
    ]);
  });

  test('secure naming: a sidecar endpoint whose certificate is not one of the service\'s accounts is refused', async () => {
    apply(clientSnapshot({ ratingsEndpoints: [sidecarEndpoint(sidecarPort, 'bookinfo-reviews')] }));
    const [result] = await ratingsRound(1);
    expect(result.status).toBeGreaterThanOrEqual(500);
  });

  test('telemetry: the destination sidecar counts each request with the security it really used', async () => {
    apply(clientSnapshot());
    for (let i = 0; i < 3; i++) expect((await get(client.ports.outbound!, 'details:9080')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await get(client.ports.outbound!, 'details-plain:9080')).status).toBe(200);
    const text = details.renderPrometheus();
    const count = (policy: string): number =>
      text
        .split('\n')
        .filter((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"') && l.includes(`connection_security_policy="${policy}"`))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(count('mutual_tls')).toBe(3);
    expect(count('none')).toBe(2);
    // Istio's source_principal: the client's SPIFFE ID on mutual TLS, unknown on plaintext.
    const mtlsLines = text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('connection_security_policy="mutual_tls"'));
    expect(mtlsLines.length).toBeGreaterThan(0);
    for (const line of mtlsLines) {
      expect(line).toContain(`source_principal="spiffe://${CLIENT_PRINCIPAL}"`);
      expect(line).toContain(`destination_principal="spiffe://cluster.local/ns/bookinfo/sa/bookinfo-details"`);
    }
    const plainLines = text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes('connection_security_policy="none"'));
    for (const line of plainLines) expect(line).toMatch(/source_principal="unknown".*destination_principal="unknown"/);
  });
});
