import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { generateKeyAndCsr } from '../../src/security/ca/csr.js';
import { bootstrapExchange, createBootstrapHandler, renewWithPeerCertificate } from '../../src/security/bootstrap.js';
import { JoinTokenStore } from '../../src/security/join-tokens.js';
import { requestBootstrapCertificate } from '../../src/security/bootstrap-client.js';
import { issueWorkload } from './helpers/mesh.js';
import { REDACT_CENSOR, redactOptions } from '../../src/security/redact.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs();

/** A pino logger configured like every Trellis logger, writing JSON lines into an array. */
function capturingLogger(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  let raw = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      raw += chunk.toString();
      done();
    },
  });
  const logger = pino({ ...redactOptions, level: 'debug' }, sink);
  return {
    logger,
    raw: () => raw,
    lines: () => raw.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

let stateDir: string;
let ca: CertificateAuthority;
let tokens: JoinTokenStore;
let csrPem: string;

beforeAll(async () => {
  stateDir = tmp.make();
  ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
  tokens = new JoinTokenStore({ stateDir });
  ({ csrPem } = await generateKeyAndCsr({ trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' }));
});
afterAll(() => tmp.cleanup());

describe('join tokens', () => {
  it('creates one token per cluster in the state dir with mode 0600 and keeps it across restarts', async () => {
    const east = await tokens.tokenFor('east');
    const west = await tokens.tokenFor('west');
    expect(east).not.toBe(west);
    expect(east.length).toBeGreaterThanOrEqual(43);
    const path = join(stateDir, 'join-tokens', 'east.token');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await new JoinTokenStore({ stateDir }).tokenFor('east')).toBe(east);
  });

  it('checks tokens per cluster', async () => {
    const east = await tokens.tokenFor('east');
    expect(await tokens.verify('east', east)).toBe(true);
    expect(await tokens.verify('west', east)).toBe(false);
    expect(await tokens.verify('east', east.slice(0, -1))).toBe(false);
    expect(await tokens.verify('east', '')).toBe(false);
    expect(await tokens.verify('../east', east)).toBe(false);
  });

  it('reads a token from a configured file instead of creating one', async () => {
    const file = join(tmp.make(), 'token');
    writeFileSync(file, 'a-token-from-the-installer-0123456789\n');
    const store = new JoinTokenStore({ stateDir: tmp.make(), tokenFiles: { prod: file } });
    expect(await store.verify('prod', 'a-token-from-the-installer-0123456789')).toBe(true);
    expect(await store.tokenPath('prod')).toBe(file);
  });
});

describe('bootstrap exchange', () => {
  it('token + CSR gives a chain for the requested identity; a wrong token is 401', async () => {
    const token = await tokens.tokenFor('east');
    const issued = await bootstrapExchange(ca, tokens, { cluster: 'east', token, csrPem, namespace: 'shop', serviceAccount: 'web' });
    expect(new X509Certificate(issued.certPem).verify(new X509Certificate(ca.rootCertPem).publicKey)).toBe(true);
    expect(issued.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    await expect(
      bootstrapExchange(ca, tokens, { cluster: 'west', token, csrPem, namespace: 'shop', serviceAccount: 'web' }),
    ).rejects.toMatchObject({ code: 'AUTHN', status: 401 });
  });

  it('token exchange binds the certificate to the token cluster (subject OU)', async () => {
    const issued = await bootstrapExchange(ca, tokens, { cluster: 'east', token: await tokens.tokenFor('east'), csrPem, namespace: 'shop', serviceAccount: 'web' });
    expect(new X509Certificate(issued.certPem).subject).toBe('OU=east');
  });

  it('renewal takes identity and cluster from the verified peer certificate; the CSR may not ask for another', async () => {
    const peer = { authorized: true, spiffeId: 'spiffe://cluster.local/ns/pay/sa/api', cluster: 'east', serialNumber: '01' };
    const own = await generateKeyAndCsr({ trustDomain: 'cluster.local', namespace: 'pay', serviceAccount: 'api' });
    const renewed = renewWithPeerCertificate(ca, peer, { csrPem: own.csrPem });
    const leaf = new X509Certificate(renewed.certPem);
    expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/pay/sa/api');
    expect(leaf.subject).toBe('OU=east');
    expect(() => renewWithPeerCertificate(ca, peer, { csrPem })).toThrow(expect.objectContaining({ code: 'IDENTITY' }));
    expect(() => renewWithPeerCertificate(ca, undefined, { csrPem: own.csrPem })).toThrow(expect.objectContaining({ code: 'AUTHN' }));
    expect(() => renewWithPeerCertificate(ca, { ...peer, cluster: undefined }, { csrPem: own.csrPem })).toThrow(expect.objectContaining({ code: 'AUTHN' }));
    expect(() => renewWithPeerCertificate(ca, { ...peer, authorized: false, authorizationError: 'CERT_HAS_EXPIRED' }, { csrPem: own.csrPem })).toThrow(
      expect.objectContaining({ code: 'AUTHN', reason: 'client certificate refused: CERT_HAS_EXPIRED' }),
    );
  });

  describe('over HTTPS', () => {
    let server: HttpsServer;
    let url: string;
    let dispatcher: Agent;
    const log = capturingLogger();
    beforeAll(async () => {
      const operator = await issueWorkload(ca, 'operator', undefined, 'trellis-system');
      server = createHttpsServer({ key: operator.privateKeyPem, cert: operator.certChainPem }, createBootstrapHandler(ca, tokens, log.logger));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/bootstrap`;
      dispatcher = new Agent({ connect: { ca: ca.rootCertPem, checkServerIdentity: () => undefined } });
    });
    afterAll(async () => {
      await dispatcher.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    const post = async (body: string): Promise<{ status: number; json: unknown }> => {
      const res = await request(url, { method: 'POST', body, dispatcher });
      return { status: res.statusCode, json: await res.body.json() };
    };

    it('answers 200 with the chain, 401 with an opaque body for a bad token, and logs neither token', async () => {
      const token = await tokens.tokenFor('east');
      const ok = await post(JSON.stringify({ cluster: 'east', token, csrPem, namespace: 'shop', serviceAccount: 'web' }));
      expect(ok.status).toBe(200);
      const body = ok.json as { certChain: string[]; rootCertPem: string };
      expect(body.certChain).toHaveLength(2);
      expect(body.rootCertPem).toBe(ca.rootCertPem);

      const badToken = 'wrong-token-value-that-must-not-be-logged';
      const denied = await post(JSON.stringify({ cluster: 'east', token: badToken, csrPem, namespace: 'shop', serviceAccount: 'web' }));
      expect(denied).toEqual({ status: 401, json: { code: 'AUTHN', message: 'authentication failed' } });
      expect((await post('{')).status).toBe(400);

      const lines = log.lines();
      expect(lines.map((line) => line.msg)).toEqual(['bootstrap certificate issued', 'bootstrap refused']);
      expect(log.raw()).not.toContain(token);
      expect(log.raw()).not.toContain(badToken);
    });
  });
});

describe('bootstrap client (proxy side)', () => {
  let server: HttpsServer;
  let url: string;
  beforeAll(async () => {
    const operator = await issueWorkload(ca, 'operator', undefined, 'trellis-system');
    server = createHttpsServer({ key: operator.privateKeyPem, cert: operator.certChainPem }, createBootstrapHandler(ca, tokens));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/bootstrap`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const common = () => ({ url, cluster: 'east', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart', caPem: ca.rootCertPem, expectedServerSpiffeIds: ['spiffe://cluster.local/ns/trellis-system/sa/operator'] });

  it('gets a workload certificate over HTTPS, verifying the operator by its SPIFFE id', async () => {
    const cert = await requestBootstrapCertificate({ ...common(), token: await tokens.tokenFor('east') });
    expect(cert.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/cart');
    expect(cert.rootCertPem).toBe(ca.rootCertPem);
    expect(createPublicKey(createPrivateKey(cert.privateKeyPem)).export({ format: 'pem', type: 'spki' })).toBe(
      new X509Certificate(cert.certChainPem).publicKey.export({ format: 'pem', type: 'spki' }),
    );
  });

  it('fails with AUTHN on a bad token and refuses an operator with an unexpected identity', async () => {
    await expect(requestBootstrapCertificate({ ...common(), token: 'nope-nope-nope-nope' })).rejects.toMatchObject({ code: 'AUTHN' });
    await expect(
      requestBootstrapCertificate({ ...common(), token: await tokens.tokenFor('east'), expectedServerSpiffeIds: ['spiffe://cluster.local/ns/x/sa/y'] }),
    ).rejects.toMatchObject({ code: 'CA_NOT_READY' });
  });
});

describe('log redaction', () => {
  it('censors tokens, keys and credentials wherever a caller logs them', () => {
    const log = capturingLogger();
    const secrets = ['tok-1', 'tok-2', 'key-3', 'Bearer jwt-4', 'sid=5', 'jt-6', 'pem-7', 'pw-8'];
    log.logger.info({ token: secrets[0], bootstrap: { token: secrets[1], cluster: 'east' } }, 'a');
    log.logger.info({ privateKeyPem: secrets[2], req: { headers: { authorization: secrets[3], cookie: secrets[4], 'x-trellis-join-token': secrets[5] } } }, 'b');
    log.logger.info({ cert: { keyPem: secrets[6] }, password: secrets[7] }, 'c');
    const raw = log.raw();
    for (const secret of secrets) expect(raw).not.toContain(secret);
    const [a, b] = log.lines();
    expect(a.token).toBe(REDACT_CENSOR);
    expect((a.bootstrap as Record<string, unknown>).cluster).toBe('east');
    expect(((b.req as Record<string, Record<string, unknown>>).headers).authorization).toBe(REDACT_CENSOR);
  });
});
