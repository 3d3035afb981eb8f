import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { AuthorizationPolicyRef, ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import type { ProxySecurity } from '../../src/proxy/mesh-security.js';
import { startProxy, type Proxy } from '../../src/proxy/server.js';
import { CertificateAuthority, generateKeyAndCsr } from '../../src/security/index.js';
import { cluster, route, snapshot, toCluster } from '../proxy/fixtures.js';
import { httpGet, sidecarIdentity, startTestMeshCa, type TestMeshCa } from './helpers/mesh-ca.js';

/**
 * Two sidecars with workload certificates from a real bootstrap endpoint (CA + join token over
 * TLS), real TLS between them, a STRICT inbound, authorization from the snapshot, and openssl as
 * an independent client.
 */
const run = promisify(execFile);
const TRUST_DOMAIN = 'cluster.local';
const RATINGS_SA = 'bookinfo-ratings';
const PRODUCTPAGE_PRINCIPAL = 'cluster.local/ns/bookinfo/sa/bookinfo-productpage';
const RATINGS_CLUSTER = 'outbound|9080||ratings.bookinfo.svc.cluster.local';
const MISNAMED_CLUSTER = 'outbound|9080||misnamed.bookinfo.svc.cluster.local';

let mesh: TestMeshCa;
let app: Server;
const seen: Array<{ method: string; url: string }> = [];
let client: Proxy;
let server: Proxy;
let serverSecurity: ProxySecurity;
let clientSecurity: ProxySecurity;
let otherCa: CertificateAuthority;

const identity = (workload: string, serviceAccount: string): ProxyIdentity => sidecarIdentity('c1', 'bookinfo', workload, serviceAccount);

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

function serverSnapshot(authorization: AuthorizationPolicyRef[] = []): ProxySnapshot {
  const s = snapshot({});
  return { ...s, proxy: identity('ratings', RATINGS_SA), inbound: { mtlsMode: 'STRICT', portLevelMtls: {}, authorization, jwtRules: [] } };
}

const get = (port: number, host: string, method = 'GET', path = '/ratings/1') => httpGet(port, host, path, method);

/** A raw plaintext HTTP request on a net socket: how many bytes came back and how the connection ended. */
function plaintextExchange(port: number): Promise<{ bytes: number; error?: string }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let error: string | undefined;
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write('GET /ratings/1 HTTP/1.1\r\nhost: ratings:9080\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    socket.on('close', () => resolve(error ? { bytes, error } : { bytes }));
  });
}

beforeAll(async () => {
  mesh = await startTestMeshCa({ cluster: 'c1', trustDomain: TRUST_DOMAIN });
  otherCa = await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: join(mesh.dir, 'other') });

  app = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ app: 'ratings', url: req.url }));
  });
  const appPort = await listen(app);

  serverSecurity = await mesh.security(identity('ratings', RATINGS_SA));
  clientSecurity = await mesh.security(identity('productpage', 'bookinfo-productpage'));

  server = await startProxy({ mode: 'sidecar', bindAddress: '127.0.0.1', inboundPort: 0, appPort, appHost: '127.0.0.1', tls: serverSecurity.tls, inboundFilter: serverSecurity.inboundFilter });
  const applied = server.applySnapshot(serverSnapshot());
  expect(applied.ok).toBe(true);

  const inbound = server.ports.inbound!;
  const sidecarEndpoint = (serviceAccount: string) => ({ address: '127.0.0.1', port: inbound, labels: {}, tlsMode: 'istio' as const, serviceAccount, namespace: 'bookinfo', weight: 1 });
  const clientSnapshot = snapshot({
    hosts: [
      { domains: ['ratings', 'ratings:9080'], routes: [route({ action: toCluster(RATINGS_CLUSTER) })] },
      { domains: ['misnamed', 'misnamed:9080'], routes: [route({ action: toCluster(MISNAMED_CLUSTER) })] },
    ],
    clusters: [cluster(RATINGS_CLUSTER, { service: 'ratings.bookinfo.svc.cluster.local', port: 9080 }), cluster(MISNAMED_CLUSTER, { service: 'misnamed.bookinfo.svc.cluster.local', port: 9080 })],
    // Secure naming: the misnamed service's endpoint claims another account than the sidecar has.
    endpoints: { [RATINGS_CLUSTER]: [sidecarEndpoint(RATINGS_SA)], [MISNAMED_CLUSTER]: [sidecarEndpoint('bookinfo-reviews')] },
  });
  client = await startProxy({ mode: 'sidecar', bindAddress: '127.0.0.1', outboundPort: 0, tls: clientSecurity.tls, inboundFilter: clientSecurity.inboundFilter });
  clientSecurity.observeSnapshot(clientSnapshot);
  expect(client.applySnapshot(clientSnapshot).ok).toBe(true);
}, 30_000);

afterAll(async () => {
  await client?.close({ drainMs: 0 });
  await server?.close({ drainMs: 0 });
  await new Promise((r) => app?.close(r));
  await mesh?.close();
});

describe('sidecar-to-sidecar mTLS with bootstrapped workload certificates', () => {
  test('each proxy holds a certificate for its SPIFFE identity from the bootstrap endpoint', () => {
    expect(serverSecurity.certificateInfo().spiffeId).toBe(`spiffe://${TRUST_DOMAIN}/ns/bookinfo/sa/${RATINGS_SA}`);
    expect(clientSecurity.certificateInfo().spiffeId).toBe(`spiffe://${PRODUCTPAGE_PRINCIPAL}`);
    expect(serverSecurity.certificateInfo().issuer).toBeTruthy();
  });

  test('STRICT: a plaintext connection is reset without any HTTP answer (net socket) and never reaches the app', async () => {
    const before = seen.length;
    const outcome = await plaintextExchange(server.ports.inbound!);
    expect(outcome).toEqual({ bytes: 0, error: 'ECONNRESET' });
    expect(seen.length).toBe(before);
    // Istio's sidecar counts no HTTP request for it either.
    expect(server.renderPrometheus()).not.toMatch(/istio_requests_total\{[^}]*response_code="403"/);
  });

  test('STRICT: curl over plaintext gets a connection reset, no status code', async () => {
    const before = seen.length;
    const result = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${server.ports.inbound}/ratings/1`]).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
    // 56: failure receiving data (connection reset by peer); 52 would be an empty reply.
    expect([52, 56]).toContain(result.code);
    expect(result.stdout).toBe('000');
    expect(result.stderr).toMatch(/reset|Empty reply/i);
    expect(seen.length).toBe(before);
  });

  test('port-level STRICT on a PERMISSIVE workload resets plaintext on that port only', async () => {
    const inbound = server.ports.inbound!;
    // Each snapshot() call carries a new version, so every apply below takes effect.
    const permissiveWith = (portLevelMtls: Record<string, 'STRICT'>): ProxySnapshot => ({
      ...serverSnapshot(),
      inbound: { mtlsMode: 'PERMISSIVE', portLevelMtls, authorization: [], jwtRules: [] },
    });
    expect(server.applySnapshot(permissiveWith({ [String(inbound)]: 'STRICT' })).ok).toBe(true);
    expect(await plaintextExchange(inbound)).toEqual({ bytes: 0, error: 'ECONNRESET' });
    expect(server.applySnapshot(permissiveWith({ [String(inbound + 1)]: 'STRICT' })).ok).toBe(true);
    expect((await get(inbound, 'ratings:9080', 'GET', '/permissive')).status).toBe(200);
    expect(server.applySnapshot(serverSnapshot()).ok).toBe(true);
  });

  test('through the peer sidecar (auto mTLS) the request succeeds and the app sees it', async () => {
    const res = await get(client.ports.outbound!, 'ratings:9080', 'GET', '/ratings/42');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ app: 'ratings', url: '/ratings/42' });
    expect(seen.some((r) => r.url === '/ratings/42')).toBe(true);
  });

  test('secure naming: a server presenting another identity than the endpoint account is refused', async () => {
    const before = seen.length;
    const res = await get(client.ports.outbound!, 'misnamed:9080', 'GET', '/misnamed');
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(seen.length).toBe(before);
  });

  test('openssl s_client sees the SPIFFE SAN and a chain that verifies to the mesh root', async () => {
    const cert = serverSecurity.store.current;
    const peer = clientSecurity.store.current;
    await writeFile(join(mesh.dir, 'root.pem'), cert.rootCertPem);
    await writeFile(join(mesh.dir, 'client.pem'), peer.certChainPem);
    await writeFile(join(mesh.dir, 'client.key'), peer.privateKeyPem, { mode: 0o600 });
    const { stdout } = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${server.ports.inbound} -CAfile ${mesh.dir}/root.pem -cert ${mesh.dir}/client.pem -key ${mesh.dir}/client.key -showcerts </dev/null 2>&1`], { timeout: 10_000 });
    expect(stdout).toMatch(/Verify return code: 0 \(ok\)/);
    const leaf = stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0];
    await writeFile(join(mesh.dir, 'leaf.pem'), `${leaf}\n`);
    const { stdout: text } = await run('openssl', ['x509', '-in', join(mesh.dir, 'leaf.pem'), '-noout', '-ext', 'subjectAltName']);
    expect(text).toContain(`URI:spiffe://${TRUST_DOMAIN}/ns/bookinfo/sa/${RATINGS_SA}`);
  });

  test('a client certificate from another CA is refused in the handshake', async () => {
    const { privateKeyPem, csrPem } = await generateKeyAndCsr({ trustDomain: TRUST_DOMAIN, namespace: 'bookinfo', serviceAccount: 'intruder' });
    const foreign = otherCa.issueWorkloadCertificate(csrPem, { trustDomain: TRUST_DOMAIN, namespace: 'bookinfo', serviceAccount: 'intruder' });
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: server.ports.inbound!, key: privateKeyPem, cert: foreign.certChainPem, ca: serverSecurity.store.current.rootCertPem, checkServerIdentity: () => undefined });
      socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nhost: ratings\r\n\r\n'));
      socket.on('data', (d: Buffer) => {
        resolve(`answered ${d.toString('utf8').split('\r\n')[0]}`);
        socket.destroy();
      });
      socket.on('error', (e) => resolve(`error ${e.message}`));
      socket.on('close', () => resolve('closed'));
    });
    expect(outcome.startsWith('answered')).toBe(false);
  });

  test('AuthorizationPolicy DENY answers 403 RBAC: access denied; the source principal comes from mTLS', async () => {
    const applied = server.applySnapshot(
      serverSnapshot([
        { name: 'bookinfo/deny-delete', action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] },
        { name: 'bookinfo/deny-productpage-admin', action: 'DENY', rules: [{ from: [{ source: { principals: [PRODUCTPAGE_PRINCIPAL] } }], to: [{ operation: { paths: ['/admin/*'] } }] }] },
      ]),
    );
    expect(applied.ok).toBe(true);
    const denied = await get(client.ports.outbound!, 'ratings:9080', 'DELETE', '/ratings/1');
    expect(denied).toEqual({ status: 403, body: 'RBAC: access denied' });
    const admin = await get(client.ports.outbound!, 'ratings:9080', 'GET', '/admin/users');
    expect(admin).toEqual({ status: 403, body: 'RBAC: access denied' });
    const allowed = await get(client.ports.outbound!, 'ratings:9080', 'GET', '/ratings/7');
    expect(allowed.status).toBe(200);
    expect(seen.some((r) => r.method === 'DELETE' || r.url.startsWith('/admin'))).toBe(false);
  });
});
