import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer as createTlsServer, type Server as TlsServer, connect as tlsConnect } from 'node:tls';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { PeerAuthMode } from '../../src/mesh/snapshot.js';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { CertificateStore, type WorkloadCertificate } from '../../src/security/tls/certificate-store.js';
import { createClientTlsOptions, SecureNamingError } from '../../src/security/tls/client-tls.js';
import { createMeshListener, handToServer, modeForPort, type MeshListener, type RejectReason } from '../../src/security/tls/mesh-listener.js';
import { closeServer, echoSecurityServer, issueWorkload, listen, run, writeWorkloadFiles } from './helpers/mesh.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs();
let dir: string;
let ca: CertificateAuthority;
let serverCert: WorkloadCertificate;
let clientCert: WorkloadCertificate;
let store: CertificateStore;
let clientStore: CertificateStore;
let files: { cert: string; key: string; root: string };
let foreign: { cert: string; key: string; root: string };
const cleanups: Array<() => Promise<void> | void> = [];
const rejections: RejectReason[] = [];

/** One mesh listener + http server; `modes` maps listener index to its port's mode resolution. */
async function startListener(modeFor: (port: number) => PeerAuthMode): Promise<number> {
  const http = echoSecurityServer();
  const listener: MeshListener = createMeshListener({
    store,
    modeFor,
    onConnection: handToServer(http),
    onRejected: (reason) => rejections.push(reason),
  });
  const port = await listen(listener.server);
  cleanups.push(() => listener.close());
  return port;
}

beforeAll(async () => {
  dir = tmp.make();
  ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: dir });
  [serverCert, clientCert] = await Promise.all([issueWorkload(ca, 'server'), issueWorkload(ca, 'client')]);
  const never = async (): Promise<WorkloadCertificate> => {
    throw new Error('no rotation in this suite');
  };
  store = await CertificateStore.create({ initial: serverCert, renew: never });
  clientStore = await CertificateStore.create({ initial: clientCert, renew: never });
  files = writeWorkloadFiles(dir, 'client', clientCert);
  const otherCa = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make() });
  foreign = writeWorkloadFiles(dir, 'foreign', await issueWorkload(otherCa, 'client'));
});

afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  store.stop();
  clientStore.stop();
  tmp.cleanup();
});

const curl = (args: string[]) => run('curl', ['-sS', '--max-time', '5', ...args]);
const curlMtls = (port: number, certFiles = files) =>
  curl(['-k', '--cert', certFiles.cert, '--key', certFiles.key, `https://127.0.0.1:${port}/hello`]);

describe('STRICT', () => {
  let port: number;
  beforeAll(async () => {
    port = await startListener(() => 'STRICT');
  });

  it('openssl s_client: the chain verifies to the mesh root and the server SAN is its SPIFFE id', async () => {
    const result = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', files.root, '-cert', files.cert, '-key', files.key,
        '-verify_return_error', '-showcerts', '-ign_eof'],
      'GET /via-openssl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(result.stdout).toContain('Verify return code: 0 (ok)');
    const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(result.stdout)?.[0];
    expect(new X509Certificate(leafPem!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/server');
    expect(result.stdout).toContain('"principal":"cluster.local/ns/shop/sa/client"');
    expect(result.stdout).toContain('"policy":"mutual_tls"');
  });

  it('curl with a mesh client certificate is served and identified', async () => {
    const result = await curlMtls(port);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ mtls: true, principal: 'cluster.local/ns/shop/sa/client', policy: 'mutual_tls', path: '/hello' });
  });

  it('refuses plaintext, TLS without a client certificate, and a certificate from another CA', async () => {
    rejections.length = 0;
    const plaintext = await curl([`http://127.0.0.1:${port}/`]);
    expect(plaintext.code).not.toBe(0);
    expect(plaintext.stdout).toBe('');
    const noCert = await curl(['-k', `https://127.0.0.1:${port}/`]);
    expect(noCert.code).not.toBe(0);
    const otherCa = await curlMtls(port, foreign);
    expect(otherCa.code).not.toBe(0);
    const viaOpenssl = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', foreign.cert, '-key', foreign.key], 'GET / HTTP/1.0\r\n\r\n');
    expect(viaOpenssl.stdout).not.toContain('"mtls"');
    expect(rejections).toEqual(['plaintext-refused', 'tls-handshake-failed', 'tls-handshake-failed', 'tls-handshake-failed']);
  });
});

describe('PERMISSIVE, DISABLE and port-level overrides', () => {
  it('PERMISSIVE accepts plaintext and mutual TLS on the same port', async () => {
    const port = await startListener(() => 'PERMISSIVE');
    const plain = await curl([`http://127.0.0.1:${port}/p`]);
    expect(JSON.parse(plain.stdout)).toEqual({ mtls: false, policy: 'none', path: '/p' });
    const mutual = await curlMtls(port);
    expect(JSON.parse(mutual.stdout)).toMatchObject({ mtls: true, policy: 'mutual_tls' });
    expect((await curlMtls(port, foreign)).code).not.toBe(0);
  });

  it('DISABLE never offers TLS', async () => {
    const port = await startListener(() => 'DISABLE');
    expect(JSON.parse((await curl([`http://127.0.0.1:${port}/d`])).stdout)).toMatchObject({ mtls: false });
    expect((await curlMtls(port)).code).not.toBe(0);
  });

  it('portLevelMtls overrides the workload mode per destination port', async () => {
    const overrides: Record<string, PeerAuthMode> = {};
    const modeFor = modeForPort('STRICT', overrides);
    const strictPort = await startListener(modeFor);
    const relaxedPort = await startListener(modeFor);
    overrides[String(relaxedPort)] = 'PERMISSIVE';
    expect((await curl([`http://127.0.0.1:${strictPort}/`])).code).not.toBe(0);
    expect(JSON.parse((await curl([`http://127.0.0.1:${relaxedPort}/`])).stdout)).toMatchObject({ mtls: false });
  });
});

describe('client side (ISTIO_MUTUAL secure naming, SIMPLE, MUTUAL)', () => {
  let port: number;
  beforeAll(async () => {
    port = await startListener(() => 'STRICT');
  });

  function get(targetPort: number, tls: object): Promise<{ status?: number; body?: string; error?: Error }> {
    return new Promise((resolve) => {
      const req = httpsRequest({ host: '127.0.0.1', port: targetPort, path: '/naming', agent: false, ...tls }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', (error) => resolve({ error }));
      req.end();
    });
  }

  it('accepts the expected service account and refuses a server presenting another one', async () => {
    const expectServer = createClientTlsOptions({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/server'] }, clientStore)!;
    const ok = await get(port, expectServer);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body!)).toMatchObject({ principal: 'cluster.local/ns/shop/sa/client' });

    const expectOther = createClientTlsOptions({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['cluster.local/ns/shop/sa/payments'] }, clientStore)!;
    const refused = await get(port, expectOther);
    expect(refused.error).toBeInstanceOf(SecureNamingError);

    // Auto mTLS: the expected accounts come from the endpoint, not the DestinationRule.
    expect((await get(port, createClientTlsOptions('AUTO', clientStore, { subjectAltNames: ['cluster.local/ns/shop/sa/server'] })!)).status).toBe(200);
    expect((await get(port, createClientTlsOptions('AUTO', clientStore, { subjectAltNames: ['cluster.local/ns/x/sa/y'] })!)).error).toBeInstanceOf(SecureNamingError);
  });

  it('refuses a server whose certificate comes from another root', async () => {
    const otherCa = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make() });
    const impostor = await issueWorkload(otherCa, 'server');
    const server: TlsServer = createTlsServer({ key: impostor.privateKeyPem, cert: impostor.certChainPem }, (socket) => socket.end());
    const impostorPort = await listen(server);
    cleanups.push(() => closeServer(server));
    const result = await get(impostorPort, createClientTlsOptions({ mode: 'ISTIO_MUTUAL', subjectAltNames: [] }, clientStore)!);
    expect(result.error).toBeDefined();
    expect((result.error as NodeJS.ErrnoException).code).toMatch(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
  });

  it('SIMPLE and MUTUAL read their files; DISABLE is plaintext', async () => {
    const caFile = join(dir, 'mesh-root.pem');
    writeFileSync(caFile, ca.rootCertPem);
    const simple = createClientTlsOptions({ mode: 'SIMPLE', caCertificates: caFile, subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/server'] }, undefined)!;
    // SIMPLE presents no client certificate: a STRICT mesh port refuses it.
    expect((await get(port, simple)).error).toBeDefined();
    const plainTls: TlsServer = createTlsServer({ key: serverCert.privateKeyPem, cert: serverCert.certChainPem }, (socket: Socket) =>
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'),
    );
    const simplePort = await listen(plainTls);
    cleanups.push(() => closeServer(plainTls));
    expect((await get(simplePort, simple)).status).toBe(200);
    const wrongSan = createClientTlsOptions({ mode: 'SIMPLE', caCertificates: caFile, subjectAltNames: ['other.example'] }, undefined)!;
    expect((await get(simplePort, wrongSan)).error?.message).toMatch(/match none/);

    const mutual = createClientTlsOptions(
      { mode: 'MUTUAL', caCertificates: caFile, clientCertificate: files.cert, privateKey: files.key, subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/server'] },
      undefined,
    )!;
    const mutualResult = await get(port, mutual);
    expect(mutualResult.status).toBe(200);
    expect(JSON.parse(mutualResult.body!)).toMatchObject({ principal: 'cluster.local/ns/shop/sa/client' });
    expect(() => createClientTlsOptions({ mode: 'MUTUAL', caCertificates: join(dir, 'missing.pem'), subjectAltNames: [] }, undefined)).toThrow(/missing.pem/);
    expect(createClientTlsOptions({ mode: 'DISABLE', subjectAltNames: [] }, clientStore)).toBeUndefined();
  });

  it('a raw TLS client sees the server identity through the mesh listener', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...createClientTlsOptions('AUTO', clientStore)! });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    expect(socket.getPeerCertificate().subjectaltname).toBe('URI:spiffe://cluster.local/ns/shop/sa/server');
    socket.destroy();
  });
});
