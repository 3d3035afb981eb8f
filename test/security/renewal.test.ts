import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { startProxySecurity, type ProxySecurity } from '../../src/proxy/mesh-security.js';
import {
  CertificateAuthority,
  MeshCaService,
  REDACT_CENSOR,
  createBootstrapHandler,
  generateKeyAndCsr,
  isCaError,
  parseJoinToken,
  redactOptions,
  requestBootstrapCertificate,
  requestRenewedCertificate,
  requestedUrisOf,
  workloadCertificateFrom,
  type WorkloadCertificate,
} from '../../src/security/index.js';
import { tempDirs } from './helpers/tmp.js';

/**
 * Renewal over mutual TLS: after its first certificate (join token), a proxy renews with its
 * current certificate as the TLS client certificate and no token. The operator issues the SAME
 * identity and cluster; an expired, foreign, unbound or operator certificate is refused (401), and
 * the proxy then falls back to its join token. The token never travels in plaintext.
 */
const tmp = tempDirs();
const TRUST_DOMAIN = 'cluster.local';
const CLUSTER = 'east';
let service: MeshCaService;
let caDir: string;
let token: string;
let logText = '';
const logger = pino(
  { ...redactOptions, level: 'debug' },
  new Writable({
    write(chunk, _encoding, done) {
      logText += chunk.toString();
      done();
    },
  }),
);
const securities: ProxySecurity[] = [];
const count = (msg: string): number => logText.split('\n').filter((line) => line.includes(`"msg":"${msg}"`)).length;

const bootstrap = (overrides: { namespace?: string; serviceAccount?: string; ttlMs?: number } = {}): Promise<WorkloadCertificate> =>
  requestBootstrapCertificate({ url: service.bootstrapUrl, cluster: CLUSTER, token, trustDomain: TRUST_DOMAIN, namespace: 'shop', serviceAccount: 'web', ...overrides });

/** A mutual-TLS POST to the bootstrap endpoint presenting `client` (or no certificate). */
async function post(body: unknown, client?: { certChainPem: string; privateKeyPem: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  const dispatcher = new Agent({ connect: { ca: service.ca.rootCertPem, ...(client ? { cert: client.certChainPem, key: client.privateKeyPem } : {}) } });
  try {
    const res = await request(service.bootstrapUrl, { method: 'POST', dispatcher, body: JSON.stringify(body) });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  } finally {
    await dispatcher.close();
  }
}

async function csrFor(namespace: string, serviceAccount: string): Promise<{ csrPem: string; privateKeyPem: string }> {
  return generateKeyAndCsr({ trustDomain: TRUST_DOMAIN, namespace, serviceAccount });
}

const subjectOf = (cert: WorkloadCertificate): string => new X509Certificate(cert.certChainPem).subject;

beforeAll(async () => {
  caDir = tmp.make();
  service = await MeshCaService.start({ trustDomain: TRUST_DOMAIN, caDir, tokenDir: join(caDir, 'tokens'), logger });
  token = await service.tokens.tokenFor(CLUSTER);
});

afterAll(async () => {
  for (const security of securities) security.stop();
  await service?.close();
  tmp.cleanup();
});

describe('renewal over mutual TLS with the current certificate', () => {
  it('issues a new key and certificate for the same identity and cluster, without the token', async () => {
    const first = await bootstrap();
    expect(subjectOf(first)).toBe(`OU=${CLUSTER}`);
    const issuedBefore = count('bootstrap certificate issued');
    const renewed = await requestRenewedCertificate({ url: service.bootstrapUrl, current: first });
    expect(renewed.spiffeId).toBe(first.spiffeId);
    expect(subjectOf(renewed)).toBe(`OU=${CLUSTER}`);
    expect(renewed.serialNumber).not.toBe(first.serialNumber);
    expect(renewed.privateKeyPem).not.toBe(first.privateKeyPem);
    expect(new X509Certificate(renewed.certChainPem).verify(new X509Certificate(service.ca.rootCertPem).publicKey)).toBe(true);
    expect(count('bootstrap certificate issued')).toBe(issuedBefore);
    const renewedLine = logText.split('\n').find((line) => line.includes(renewed.serialNumber));
    expect(JSON.parse(renewedLine!)).toMatchObject({ msg: 'certificate renewed', cluster: CLUSTER, spiffeId: first.spiffeId, previousSerial: first.serialNumber });
  });

  it('from the operator API URL it renews at the TLS endpoint the API names', async () => {
    const api: Server = createServer((req, res) => service.handlePlainHttp(req, res));
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const first = await bootstrap({ serviceAccount: 'api-user' });
      const renewed = await requestRenewedCertificate({ url: `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1/bootstrap`, current: first });
      expect(renewed.spiffeId).toBe(first.spiffeId);
    } finally {
      await new Promise((resolve) => api.close(resolve));
    }
  });

  it('curl, an independent client, renews with the certificate alone (and without one is refused)', async () => {
    const current = await bootstrap({ serviceAccount: 'curl' });
    const dir = tmp.make();
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    };
    const { csrPem } = await csrFor('shop', 'curl');
    const args = ['-sS', '--cacert', file('root.pem', service.ca.rootCertPem), '-H', 'content-type: application/json', '--data-binary', JSON.stringify({ csrPem }), '-w', '\n%{http_code}', service.bootstrapUrl];
    const run = promisify(execFile);
    const renewed = (await run('curl', ['--cert', file('cert.pem', current.certChainPem), '--key', file('key.pem', current.privateKeyPem), ...args])).stdout.split('\n');
    expect(renewed.at(-1)).toBe('200');
    const leaf = new X509Certificate((JSON.parse(renewed[0]) as { certChainPem: string }).certChainPem);
    expect([leaf.subject, leaf.subjectAltName]).toEqual([`OU=${CLUSTER}`, 'URI:spiffe://cluster.local/ns/shop/sa/curl']);
    expect((await run('curl', args)).stdout.split('\n').at(-1)).toBe('401');
  });

  it('the CSR or the request may not ask for another identity', async () => {
    const current = await bootstrap();
    const other = await csrFor('shop', 'admin');
    expect(requestedUrisOf(other.csrPem)).toEqual(['spiffe://cluster.local/ns/shop/sa/admin']);
    const viaCsr = await post({ csrPem: other.csrPem }, current);
    expect(viaCsr).toEqual({ status: 400, body: { code: 'IDENTITY', message: 'invalid workload identity' } });
    const own = await csrFor('shop', 'web');
    const viaField = await post({ csrPem: own.csrPem, serviceAccount: 'admin' }, current);
    expect(viaField.status).toBe(400);
    expect(logText).toContain('renewal CSR of spiffe://cluster.local/ns/shop/sa/web asks for spiffe://cluster.local/ns/shop/sa/admin');
    expect(logText).toContain('renewal for spiffe://cluster.local/ns/shop/sa/web asks for shop/admin');
    const otherCluster = await post({ csrPem: own.csrPem, cluster: 'west' }, current);
    expect(otherCluster.body.code).toBe('IDENTITY');
    expect(logText).toContain(`renewal for spiffe://cluster.local/ns/shop/sa/web of cluster ${CLUSTER} asks for cluster west`);
    expect(() => requestedUrisOf('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----')).toThrow(expect.objectContaining({ code: 'CSR_PARSE' }));
    // The same request with the certificate's own identity is served.
    expect((await post({ csrPem: own.csrPem, namespace: 'shop', serviceAccount: 'web' }, current)).status).toBe(200);
  });

  it('refuses (401) an expired, a foreign, an unbound or no certificate, and the operator identity', async () => {
    const { csrPem } = await csrFor('shop', 'web');
    const id = { trustDomain: TRUST_DOMAIN, namespace: 'shop', serviceAccount: 'web' };
    const holding = async (ca: CertificateAuthority, binding?: { cluster: string }, ttlMs?: number) => {
      const key = await csrFor('shop', 'web');
      const issued = ca.issueWorkloadCertificate(key.csrPem, id, ttlMs, binding);
      return workloadCertificateFrom(key.privateKeyPem, issued.certChainPem, issued.rootCertPem);
    };
    // The same root with a clock two days back: a certificate of this mesh that expired yesterday.
    const pastClock = await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: caDir, now: () => Date.now() - 2 * 86_400_000 });
    expect(pastClock.rootCertPem).toBe(service.ca.rootCertPem);
    const expired = await holding(pastClock, { cluster: CLUSTER }, 3_600_000);
    expect(expired.notAfter.getTime()).toBeLessThan(Date.now());
    const foreign = await holding(await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: tmp.make() }), { cluster: CLUSTER });
    const unbound = await holding(service.ca);

    const expectAuthn = (answer: { status: number; body: Record<string, unknown> }) => expect(answer).toEqual({ status: 401, body: { code: 'AUTHN', message: 'authentication failed' } });
    expectAuthn(await post({ csrPem }, expired));
    expectAuthn(await post({ csrPem }, foreign));
    expectAuthn(await post({ csrPem }, unbound));
    expectAuthn(await post({ csrPem }));
    const operator = service.serverCertificate;
    const asOperator = await post({ csrPem: (await generateKeyAndCsr({ trustDomain: TRUST_DOMAIN, namespace: 'trellis-system', serviceAccount: 'trellis-operator' })).csrPem }, operator);
    expect(asOperator.body.code).toBe('IDENTITY');
    expect(logText).toMatch(/client certificate refused: CERT_HAS_EXPIRED/);
    expect(logText).toMatch(/is bound to no cluster: renew with the join token/);
    expect(logText).toMatch(/renewal without a client certificate/);

    // The client does not even offer an expired certificate.
    const local = await requestRenewedCertificate({ url: service.bootstrapUrl, current: expired }).catch((e: unknown) => e);
    expect(isCaError(local) && local.code).toBe('AUTHN');
  });

  it('a proxy renews over mTLS at rotation, and falls back to its join token when its certificate is refused', async () => {
    const identity: ProxyIdentity = { id: `${CLUSTER}/shop/cart/0`, cluster: CLUSTER, namespace: 'shop', workload: 'cart', labels: {}, serviceAccount: 'cart', mode: 'sidecar' };
    const security = await startProxySecurity({ bootstrapUrl: service.bootstrapUrl, cluster: CLUSTER, token, trustDomain: TRUST_DOMAIN }, identity, logger);
    securities.push(security);
    const store = security.store;
    expect(security.certificateInfo().cluster).toBe(CLUSTER);

    const issued = count('bootstrap certificate issued');
    const renewed = count('certificate renewed');
    const first = store.current.serialNumber;
    await store.rotateNow();
    expect(store.current.serialNumber).not.toBe(first);
    expect(count('certificate renewed')).toBe(renewed + 1);
    expect(count('bootstrap certificate issued')).toBe(issued);

    // A valid certificate of this mesh that is bound to no cluster: renewal refuses it, the token does not.
    const key = await csrFor('shop', 'cart');
    const unbound = service.ca.issueWorkloadCertificate(key.csrPem, { trustDomain: TRUST_DOMAIN, namespace: 'shop', serviceAccount: 'cart' });
    store.install(workloadCertificateFrom(key.privateKeyPem, unbound.certChainPem, unbound.rootCertPem));
    expect(security.certificateInfo().cluster).toBeUndefined();
    await store.rotateNow();
    expect(count('bootstrap certificate issued')).toBe(issued + 1);
    expect(count('renewal with the current certificate failed; using the join token')).toBe(1);
    expect(security.certificateInfo()).toMatchObject({ cluster: CLUSTER, spiffeId: 'spiffe://cluster.local/ns/shop/sa/cart' });
  });
});

describe('the join token never travels in plaintext', () => {
  it('a loopback URL that offers no TLS endpoint gets TLS_REQUIRED, and nothing is POSTed', async () => {
    const methods: string[] = [];
    const plain: Server = createServer((req, res) => {
      methods.push(req.method ?? '');
      req.resume();
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/v1/bootstrap`;
      const refused = await requestBootstrapCertificate({ url, cluster: CLUSTER, token, trustDomain: TRUST_DOMAIN, namespace: 'shop', serviceAccount: 'web' }).catch((e: unknown) => e);
      expect(isCaError(refused) && refused.code).toBe('TLS_REQUIRED');
      expect(methods).toEqual(['GET']);
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('the bootstrap handler itself refuses a request that did not come over TLS', async () => {
    const plain: Server = createServer(createBootstrapHandler(service.ca, service.tokens, logger));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const { csrPem } = await csrFor('shop', 'web');
      const res = await request(`http://127.0.0.1:${(plain.address() as AddressInfo).port}/v1/bootstrap`, {
        method: 'POST',
        body: JSON.stringify({ cluster: CLUSTER, token, csrPem, namespace: 'shop', serviceAccount: 'web' }),
      });
      expect(res.statusCode).toBe(403);
      expect(await res.body.json()).toEqual({ code: 'TLS_REQUIRED', message: 'bootstrap is served over TLS only' });
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });
});

describe('tokens and keys never reach the log', () => {
  it('the captured log of every exchange above holds no token secret and no private key', async () => {
    const cert = await bootstrap({ serviceAccount: 'logged' });
    // What a careless caller on the renewal path could log: the options and the TLS material.
    logger.info({ renewal: { current: cert, connect: { key: cert.privateKeyPem, cert: cert.certChainPem } }, tls: { key: cert.privateKeyPem }, token }, 'renewal options');
    const line = JSON.parse(logText.trim().split('\n').at(-1)!) as Record<string, Record<string, Record<string, unknown>>>;
    expect(line.renewal.current.privateKeyPem).toBe(REDACT_CENSOR);
    expect(line.renewal.connect.key).toBe(REDACT_CENSOR);
    expect(line.tls.key).toBe(REDACT_CENSOR);
    expect(count('certificate renewed')).toBeGreaterThan(0);
    expect(logText).not.toContain(parseJoinToken(token).secret);
    expect(logText).not.toContain('PRIVATE KEY');
    for (const security of securities) expect(logText).not.toContain(security.store.current.privateKeyPem.split('\n')[1]);
  });
});
