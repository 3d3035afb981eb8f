import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { request } from 'undici';
import {
  CertificateAuthority,
  JoinTokenStore,
  MeshCaService,
  caCertHashOf,
  generateKeyAndCsr,
  isCaError,
  parseJoinToken,
  redactOptions,
  requestBootstrapCertificate,
} from '../../src/security/index.js';
import { openssl, tempDirs } from './helpers/tmp.js';

/**
 * The join-token bootstrap over TLS: the operator's endpoint is verified with the root pin the
 * token carries (no root file), the token never goes out in plaintext, and independent clients
 * (curl, openssl) see a chain that verifies to the mesh root.
 */
const run = promisify(execFile);
const tmp = tempDirs();
const TRUST_DOMAIN = 'cluster.local';
let service: MeshCaService;
let plainApi: Server;
let apiUrl: string;
let token: string;
let logText = '';

const requestFor = (overrides: Partial<Parameters<typeof requestBootstrapCertificate>[0]> = {}) => ({
  url: service.bootstrapUrl,
  cluster: 'east',
  token,
  trustDomain: TRUST_DOMAIN,
  namespace: 'shop',
  serviceAccount: 'web',
  ...overrides,
});

const failure = (promise: Promise<unknown>): Promise<{ code?: string; reason?: string }> =>
  promise.then(
    () => ({}),
    (error: unknown) => (isCaError(error) ? { code: error.code, reason: error.reason } : { reason: String(error) }),
  );

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logText += chunk.toString();
      done();
    },
  });
  const dir = tmp.make();
  service = await MeshCaService.start({ trustDomain: TRUST_DOMAIN, caDir: dir, tokenDir: join(dir, 'tokens'), logger: pino({ ...redactOptions }, sink) });
  token = await service.tokens.tokenFor('east');
  plainApi = createServer((req, res) => service.handlePlainHttp(req, res));
  await new Promise<void>((resolve) => plainApi.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(plainApi.address() as AddressInfo).port}/v1/bootstrap`;
});

afterAll(async () => {
  await new Promise((resolve) => plainApi?.close(resolve));
  await service?.close();
  tmp.cleanup();
});

describe('join tokens carry the root pin', () => {
  it('hands out <secret>.sha256:<SPKI hash of the root>, and the pin matches openssl', async () => {
    const { secret, caCertHash } = parseJoinToken(token);
    expect(secret.length).toBeGreaterThanOrEqual(43);
    expect(caCertHash).toBe(caCertHashOf(service.ca.rootCertPem));
    const dir = tmp.make();
    writeFileSync(join(dir, 'root.pem'), service.ca.rootCertPem);
    const spki = Buffer.from(openssl(['x509', '-in', join(dir, 'root.pem'), '-pubkey', '-noout']).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const { createHash } = await import('node:crypto');
    expect(caCertHash).toBe(`sha256:${createHash('sha256').update(spki).digest('hex')}`);
    // Either form authenticates: the secret alone or with its pin.
    expect(await service.tokens.verify('east', secret)).toBe(true);
    expect(await service.tokens.verify('east', token)).toBe(true);
    expect(await service.tokens.verify('east', `${secret}x`)).toBe(false);
  });

  it('a token file written before pins existed keeps its secret and gains the pin', async () => {
    const dir = tmp.make();
    const ca = await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: dir });
    const legacy = await new JoinTokenStore({ stateDir: dir }).tokenFor('west');
    expect(parseJoinToken(legacy).caCertHash).toBeUndefined();
    const upgraded = await new JoinTokenStore({ stateDir: dir, caCertHash: caCertHashOf(ca.rootCertPem) }).tokenFor('west');
    expect(upgraded).toBe(`${legacy}.${caCertHashOf(ca.rootCertPem)}`);
    expect(readFileSync(join(dir, 'join-tokens', 'west.token'), 'utf8').trim()).toBe(upgraded);
    expect(await new JoinTokenStore({ stateDir: dir }).verify('west', legacy)).toBe(true);
  });
});

describe('bootstrap over TLS', () => {
  it('issues a P-256 SPIFFE certificate over TLS, trusting the operator through the pin alone', async () => {
    const cert = await requestBootstrapCertificate(requestFor());
    expect(cert.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(cert.rootCertPem).toBe(service.ca.rootCertPem);
    const leaf = new X509Certificate(cert.certChainPem);
    expect(leaf.verify(new X509Certificate(service.ca.rootCertPem).publicKey)).toBe(true);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('from the operator API (plain HTTP) it only learns where TLS is; a plaintext POST is refused', async () => {
    const answer = await request(apiUrl, { method: 'GET' });
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.json()).toEqual({ tlsUrl: service.bootstrapUrl });
    const cert = await requestBootstrapCertificate(requestFor({ url: apiUrl }));
    expect(cert.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');

    const { csrPem } = await generateKeyAndCsr({ trustDomain: TRUST_DOMAIN, namespace: 'shop', serviceAccount: 'web' });
    const plain = await request(apiUrl, { method: 'POST', body: JSON.stringify({ cluster: 'east', token, csrPem, namespace: 'shop', serviceAccount: 'web' }) });
    expect(plain.statusCode).toBe(403);
    expect(await plain.body.json()).toMatchObject({ code: 'TLS_REQUIRED', tlsUrl: service.bootstrapUrl });
  });

  it('refuses an operator whose chain does not match the pin, before sending the token', async () => {
    const issuedBefore = (logText.match(/bootstrap certificate issued/g) ?? []).length;
    const otherRoot = (await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: tmp.make() })).rootCertPem;
    const wrongPin = `${parseJoinToken(token).secret}.${caCertHashOf(otherRoot)}`;
    const refused = await failure(requestBootstrapCertificate(requestFor({ url: apiUrl, token: wrongPin })));
    expect(refused.code).toBe('AUTHN');
    expect(refused.reason).toContain('no CA certificate matching');
    // A token without a pin and no CA file: the operator cannot be authenticated, nothing is sent.
    const unpinned = await failure(requestBootstrapCertificate(requestFor({ url: apiUrl, token: parseJoinToken(token).secret })));
    expect(unpinned.code).toBe('AUTHN');
    // With the root file instead of a pin it works.
    const withFile = await requestBootstrapCertificate(requestFor({ token: parseJoinToken(token).secret, caPem: service.ca.rootCertPem }));
    expect(withFile.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    // A CA file the operator's chain does not verify against: the TLS handshake fails.
    const wrongFile = await failure(requestBootstrapCertificate(requestFor({ caPem: otherRoot })));
    expect(wrongFile.code).toBe('CA_NOT_READY');
    expect((logText.match(/bootstrap certificate issued/g) ?? []).length).toBe(issuedBefore + 1);
  });

  it('a wrong token is 401 over TLS, the operator identity is never issued, and no token reaches the log', async () => {
    const bad = await failure(requestBootstrapCertificate(requestFor({ token: `wrong-secret-but-long-enough.${parseJoinToken(token).caCertHash}` })));
    expect(bad.code).toBe('AUTHN');
    const operator = await failure(requestBootstrapCertificate(requestFor({ namespace: 'trellis-system', serviceAccount: 'trellis-operator' })));
    expect(operator.code).toBe('IDENTITY');
    expect(logText).not.toContain(parseJoinToken(token).secret);
  });

  it('curl and openssl verify the operator chain against the mesh root; SAN is the operator SPIFFE id', async () => {
    const dir = tmp.make();
    const rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, service.ca.rootCertPem);
    const { csrPem } = await generateKeyAndCsr({ trustDomain: TRUST_DOMAIN, namespace: 'shop', serviceAccount: 'curl' });
    const body = JSON.stringify({ cluster: 'east', token, csrPem, namespace: 'shop', serviceAccount: 'curl' });
    const port = new URL(service.bootstrapUrl).port;
    const { stdout } = await run('curl', ['-sS', '--cacert', rootFile, '-H', 'content-type: application/json', '--data-binary', body, `https://localhost:${port}/v1/bootstrap`]);
    const issued = JSON.parse(stdout) as { spiffeId: string; certChainPem: string };
    expect(issued.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/curl');
    // Without the mesh root curl refuses the operator (it is not a public CA).
    await expect(run('curl', ['-sS', `https://localhost:${port}/v1/bootstrap`])).rejects.toMatchObject({ code: 60 });

    const { stdout: handshake } = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -CAfile ${rootFile} -showcerts </dev/null 2>&1`]);
    expect(handshake).toMatch(/Verify return code: 0 \(ok\)/);
    const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(handshake)![0];
    expect(new X509Certificate(leafPem).subjectAltName).toContain('URI:spiffe://cluster.local/ns/trellis-system/sa/trellis-operator');
  });
});
