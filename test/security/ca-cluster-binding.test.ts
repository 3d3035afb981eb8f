import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { generateKeyAndCsr } from '../../src/security/ca/csr.js';
import { makeOpensslCa, openssl, tempDirs } from './helpers/tmp.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

const web = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' };
const api = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'api' };

function opensslText(dir: string, pem: string): string {
  const file = join(dir, `cert-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(file, pem);
  return openssl(['x509', '-in', file, '-noout', '-text', '-nameopt', 'RFC2253']);
}

function uriSans(text: string): string[] {
  return [...text.matchAll(/URI:([^\s,]+)/g)].map((match) => match[1]);
}

describe('workload certificates bound to a cluster', () => {
  let ca: CertificateAuthority;
  let dir: string;

  beforeAll(async () => {
    dir = tmp.make();
    ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make() });
    writeFileSync(join(dir, 'root.pem'), ca.rootCertPem);
  });

  it('puts OU=<cluster> as the only subject RDN, keeps exactly one URI SAN, and verifies (node and openssl)', async () => {
    const { csrPem } = await generateKeyAndCsr(web);
    const issued = ca.issueWorkloadCertificate(csrPem, web, undefined, { cluster: 'east-1' });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subject).toBe('OU=east-1');
    expect(cert.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    expect(cert.verify(new X509Certificate(ca.rootCertPem).publicKey)).toBe(true);

    const text = opensslText(dir, issued.certPem);
    expect(text).toMatch(/Subject: OU=east-1\n/);
    expect(uriSans(text)).toEqual(['spiffe://cluster.local/ns/shop/sa/web']);
    // With a subject the SAN need not be critical (RFC 5280 §4.2.1.6; Istio marks it critical only for an empty subject).
    expect(text).toMatch(/X509v3 Subject Alternative Name: \n/);
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(text).toMatch(/CA:FALSE/);
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    expect(openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    const subjectDer = openssl(['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-subject', '-nameopt', 'multiline']);
    expect(subjectDer.trim().split('\n').slice(1)).toEqual([expect.stringMatching(/^\s+organizationalUnitName\s+=\s+east-1$/)]);
  });

  it('without a binding the subject stays empty and the SAN critical, as before', async () => {
    const { csrPem } = await generateKeyAndCsr(web);
    const text = opensslText(dir, ca.issueWorkloadCertificate(csrPem, web).certPem);
    expect(text).toMatch(/Subject: *\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical/);
    expect(uriSans(text)).toEqual(['spiffe://cluster.local/ns/shop/sa/web']);
    expect(new X509Certificate(ca.issueWorkloadCertificate(csrPem, web, undefined, {}).certPem).subject).toBeUndefined(); // node: no subject
  });

  it('refuses a cluster name that is not a DNS label (no injection into the subject)', async () => {
    const { csrPem } = await generateKeyAndCsr(web);
    for (const cluster of ['', 'East', 'a,OU=admin', 'a+CN=x', 'x'.repeat(64), 'a\nb', '-a']) {
      expect(() => ca.issueWorkloadCertificate(csrPem, web, undefined, { cluster })).toThrow(
        expect.objectContaining({ code: 'IDENTITY', status: 400 }),
      );
    }
  });

  it('a TLS peer reads the cluster from peerCertificate.subject.OU over real mutual TLS', async () => {
    const material = async (identity: typeof web, cluster: string) => {
      const { privateKeyPem, csrPem } = await generateKeyAndCsr(identity);
      return { key: privateKeyPem, cert: ca.issueWorkloadCertificate(csrPem, identity, undefined, { cluster }).certChainPem, ca: ca.rootCertPem };
    };
    const [server, client] = await Promise.all([material(api, 'west-2'), material(web, 'east-1')]);
    let clientSeen: PeerCertificate | undefined;
    const listener = createTlsServer({ ...server, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
      clientSeen = socket.getPeerCertificate();
      socket.end('ok');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const serverSeen = await new Promise<PeerCertificate>((resolve, reject) => {
        const socket = tlsConnect({ ...client, host: '127.0.0.1', port: (listener.address() as AddressInfo).port, checkServerIdentity: () => undefined });
        socket.once('secureConnect', () => {
          const peer = socket.getPeerCertificate();
          socket.on('data', () => undefined);
          socket.once('end', () => {
            socket.destroy();
            resolve(peer);
          });
        });
        socket.once('error', reject);
      });
      expect(serverSeen.subject.OU).toBe('west-2');
      expect(serverSeen.subjectaltname).toBe('URI:spiffe://cluster.local/ns/shop/sa/api');
      expect(clientSeen?.subject.OU).toBe('east-1');
      expect(clientSeen?.subjectaltname).toBe('URI:spiffe://cluster.local/ns/shop/sa/web');
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  it('binds through RSA roots and an openssl-built EC plug-in intermediate too', async () => {
    const rsa = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make(), rootKeyType: 'rsa-2048' });
    const files = makeOpensslCa(tmp.make(), 'Bind', 'ec');
    const plugin = await CertificateAuthority.open({ trustDomain: 'cluster.local', plugin: files });
    const { csrPem } = await generateKeyAndCsr(web, 'rsa-2048');
    const dir = tmp.make();
    for (const authority of [rsa, plugin]) {
      const issued = authority.issueWorkloadCertificate(csrPem, web, undefined, { cluster: 'edge' });
      expect(new X509Certificate(issued.certPem).subject).toBe('OU=edge');
      writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
      writeFileSync(join(dir, 'untrusted.pem'), issued.certChainPem.slice(issued.certPem.length) || issued.rootCertPem);
      writeFileSync(join(dir, 'root.pem'), issued.rootCertPem);
      expect(openssl(['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'untrusted.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    }
  });
});
