import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { generateKeyAndCsr } from '../../src/security/ca/csr.js';
import { CaError } from '../../src/security/errors.js';
import { makeOpensslCa, openssl, tempDirs } from './helpers/tmp.js';

const tmp = tempDirs();
afterAll(() => tmp.cleanup());

const alice = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'alice' };
const bob = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'bob' };

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('self-signed CA', () => {
  let stateDir: string;
  let ca: CertificateAuthority;
  let csrPem: string;

  beforeAll(async () => {
    stateDir = tmp.make();
    ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
    ({ csrPem } = await generateKeyAndCsr(alice));
  });

  it('persists the root with owner-only modes and reloads the same root on restart', async () => {
    expect(mode(join(stateDir, 'ca'))).toBe(0o700);
    expect(mode(join(stateDir, 'ca', 'root-key.pem'))).toBe(0o600);
    expect(mode(join(stateDir, 'ca', 'root-cert.pem'))).toBe(0o600);
    const restarted = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
    expect(restarted.rootFingerprint256).toBe(ca.rootFingerprint256);
    expect(restarted.rootCertPem).toBe(ca.rootCertPem);
    // A certificate issued before the restart still verifies against the reloaded root.
    const before = ca.issueWorkloadCertificate(csrPem, alice);
    expect(new X509Certificate(before.certPem).verify(new X509Certificate(restarted.rootCertPem).publicKey)).toBe(true);
    const other = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make() });
    expect(other.rootFingerprint256).not.toBe(ca.rootFingerprint256);
  });

  it('issues a SPIFFE workload certificate that verifies against the root (node and openssl)', () => {
    const issued = ca.issueWorkloadCertificate(csrPem, alice);
    const cert = new X509Certificate(issued.certPem);
    const root = new X509Certificate(ca.rootCertPem);
    expect(cert.verify(root.publicKey)).toBe(true);
    expect(cert.checkIssued(root)).toBe(true);
    expect(cert.subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/alice');
    expect(issued.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/alice');
    expect(cert.serialNumber).toBe(issued.serialNumber);
    expect(cert.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.ca).toBe(false);
    const lifetimeMs = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    expect(lifetimeMs).toBeGreaterThan(24 * 3600_000);
    expect(lifetimeMs).toBeLessThanOrEqual(24 * 3600_000 + 61_000);
    expect(issued.chain).toEqual([issued.certPem, ca.rootCertPem]);

    const dir = tmp.make();
    writeFileSync(join(dir, 'root.pem'), ca.rootCertPem);
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    expect(openssl(['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    expect(openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    const text = openssl(['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text']);
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/alice/);
  });

  it('writes proxy CSRs that openssl verifies, asking for the SPIFFE URI (P-256 and RSA-2048)', async () => {
    const dir = tmp.make();
    for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
      const file = join(dir, `${keyType}.csr`);
      writeFileSync(file, (await generateKeyAndCsr(alice, keyType)).csrPem);
      const text = openssl(['req', '-in', file, '-noout', '-verify', '-text']);
      expect(text).toMatch(/Requested Extensions:\s+X509v3 Subject Alternative Name:\s+URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/alice\n/);
      expect(text).toMatch(keyType === 'rsa-2048' ? /Public-Key: \(2048 bit\)/ : /NIST CURVE: P-256/);
    }
  });

  it('takes the identity from the caller, never from the CSR', () => {
    const issued = ca.issueWorkloadCertificate(csrPem, bob); // CSR asks for alice
    expect(new X509Certificate(issued.certPem).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/bob');
  });

  it('honours a shorter TTL and refuses out-of-range TTLs', () => {
    const issued = ca.issueWorkloadCertificate(csrPem, alice, 3600_000);
    expect(issued.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(3600_000);
    expect(issued.notAfter.getTime() - Date.now()).toBeGreaterThan(3500_000);
    for (const ttl of [0, -1, Number.NaN, 365 * 24 * 3600_000]) {
      expect(() => ca.issueWorkloadCertificate(csrPem, alice, ttl)).toThrow(expect.objectContaining({ code: 'TTL', status: 400 }));
    }
  });

  it('returns typed errors with a code, a wire status and an opaque message', async () => {
    const attempt = (csr: string, id = alice): CaError => {
      try {
        ca.issueWorkloadCertificate(csr, id);
      } catch (error) {
        return error as CaError;
      }
      throw new Error('expected a CaError');
    };
    const garbage = attempt('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n');
    expect(garbage).toBeInstanceOf(CaError);
    expect([garbage.code, garbage.status]).toEqual(['CSR_PARSE', 400]);
    expect(garbage.toWire()).toEqual({ code: 'CSR_PARSE', message: 'invalid certificate signing request' });

    // Flip one byte of the signature: the CSR's self-signature no longer verifies.
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] ^= 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(attempt(tampered).code).toBe('CSR_SIGNATURE');

    // A P-256 point moved off the curve (last byte of Y): refused before any signature check.
    const offCurve = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const pointAt = offCurve.indexOf(Buffer.from('03420004', 'hex')) + 4;
    offCurve[pointAt + 63] ^= 0x01;
    expect(attempt(`-----BEGIN CERTIFICATE REQUEST-----\n${offCurve.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`).code).toBe('CSR_PARSE');
    const p521Csr = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521', '-nodes', '-keyout', '/dev/null', '-subj', '/O=x']);
    expect(attempt(p521Csr).code).toBe('CSR_KEY');
    const weakRsaCsr = openssl(['req', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', '/dev/null', '-subj', '/O=x']);
    expect(attempt(weakRsaCsr).code).toBe('CSR_KEY');
    expect(attempt(csrPem, { ...alice, trustDomain: 'other.domain' }).code).toBe('IDENTITY');
    const injection = attempt(csrPem, { ...alice, serviceAccount: 'a,URI:spiffe://evil' });
    expect([injection.code, injection.status]).toEqual(['IDENTITY', 400]);
  });

  it('creates an ECDSA P-256 root and proxies ask for P-256 keys by default', async () => {
    expect(ca.signingKeyType).toBe('ec');
    const root = new X509Certificate(ca.rootCertPem);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(root.ca).toBe(true);
    const leaf = new X509Certificate(ca.issueWorkloadCertificate(csrPem, alice).certPem);
    expect(leaf.publicKey.asymmetricKeyType).toBe('ec');
    const dir = tmp.make();
    writeFileSync(join(dir, 'root.pem'), ca.rootCertPem);
    const text = openssl(['x509', '-in', join(dir, 'root.pem'), '-noout', '-text']);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    expect(text).toMatch(/Subject: O\s*=\s*cluster.local/);
  });

  it('signs CSRs made by openssl (P-256, P-384 and RSA-2048 keys)', () => {
    const dir = tmp.make();
    writeFileSync(join(dir, 'root.pem'), ca.rootCertPem);
    for (const newKey of [['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['rsa:2048']]) {
      const csr = openssl(['req', '-new', '-newkey', ...newKey, '-nodes', '-keyout', '/dev/null', '-subj', '/O=x']);
      const issued = ca.issueWorkloadCertificate(csr, alice);
      writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
      expect(openssl(['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    }
  });

  it('an RSA root already in a state dir keeps working (and signs P-256 leaves)', async () => {
    const dir = tmp.make();
    const rsa = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: dir, rootKeyType: 'rsa-2048' });
    const reopened = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: dir });
    expect(reopened.rootFingerprint256).toBe(rsa.rootFingerprint256);
    expect(reopened.signingKeyType).toBe('rsa');
    const issued = reopened.issueWorkloadCertificate(csrPem, alice);
    writeFileSync(join(dir, 'root.pem'), reopened.rootCertPem);
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    expect(openssl(['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')])).toContain('OK');
    expect(openssl(['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text'])).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
  });

  it('issues the operator serving certificate with its own key, SPIFFE id, DNS and IP names', async () => {
    const issued = await ca.issueServerCertificate({
      identity: { trustDomain: 'cluster.local', namespace: 'trellis-system', serviceAccount: 'trellis-operator' },
      dnsNames: ['localhost', 'trellis-operator.trellis-system.svc'],
      ipAddresses: ['127.0.0.1', '::1'],
      ttlMs: 400 * 24 * 3600_000,
    });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).toBe(
      'URI:spiffe://cluster.local/ns/trellis-system/sa/trellis-operator, DNS:localhost, DNS:trellis-operator.trellis-system.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkPrivateKey(createPrivateKey(issued.privateKeyPem))).toBe(true);
    expect(cert.verify(new X509Certificate(ca.rootCertPem).publicKey)).toBe(true);
  });

  it('refuses to start with half a CA rather than overwrite it', async () => {
    const dir = tmp.make();
    await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: dir });
    unlinkSync(join(dir, 'ca', 'root-key.pem'));
    await expect(CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: dir })).rejects.toMatchObject({
      code: 'CA_LOAD',
    });
  });
});

describe('plug-in CA (intermediate built by the openssl CLI)', () => {
  let a: ReturnType<typeof makeOpensslCa>;
  let b: ReturnType<typeof makeOpensslCa>;
  beforeAll(() => {
    a = makeOpensslCa(tmp.make(), 'A');
    b = makeOpensslCa(tmp.make(), 'B');
  });

  it('signs with the intermediate; the chain verifies to the user root', async () => {
    const dir = tmp.make();
    const files = a;
    const ca = await CertificateAuthority.open({ trustDomain: 'example.org', plugin: files });
    expect(ca.mode).toBe('plugin');
    expect(ca.rootCertPem).toBe(readFileSync(files.rootFile, 'utf8'));
    const id = { trustDomain: 'example.org', namespace: 'ns1', serviceAccount: 'sa1' };
    const { csrPem } = await generateKeyAndCsr(id);
    const issued = ca.issueWorkloadCertificate(csrPem, id);
    expect(issued.chain).toHaveLength(3);
    const intermediate = new X509Certificate(readFileSync(files.certFile));
    expect(new X509Certificate(issued.certPem).verify(intermediate.publicKey)).toBe(true);
    writeFileSync(join(dir, 'leaf-chain.pem'), issued.certChainPem);
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    writeFileSync(join(dir, 'untrusted.pem'), issued.certChainPem.slice(issued.certPem.length));
    expect(openssl(['verify', '-CAfile', files.rootFile, '-untrusted', join(dir, 'untrusted.pem'), join(dir, 'leaf.pem')])).toContain('OK');
  });

  it('signs with an ECDSA intermediate too (the plug-in CA keeps its key type)', async () => {
    const files = makeOpensslCa(tmp.make(), 'EC', 'ec');
    const ca = await CertificateAuthority.open({ trustDomain: 'example.org', plugin: files });
    expect(ca.signingKeyType).toBe('ec');
    const id = { trustDomain: 'example.org', namespace: 'ns1', serviceAccount: 'sa1' };
    const issued = ca.issueWorkloadCertificate((await generateKeyAndCsr(id, 'rsa-2048')).csrPem, id);
    const dir = tmp.make();
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    writeFileSync(join(dir, 'untrusted.pem'), issued.certChainPem.slice(issued.certPem.length));
    expect(openssl(['verify', '-CAfile', files.rootFile, '-untrusted', join(dir, 'untrusted.pem'), join(dir, 'leaf.pem')])).toContain('OK');
  });

  it("keeps an intermediate's P-384 key and its multi-valued, mixed-string subject as the leaves' issuer", async () => {
    const dir = tmp.make();
    const p = (file: string) => join(dir, file);
    writeFileSync(p('ext.cnf'), ['[ca_ext]', 'basicConstraints=critical,CA:true', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash'].join('\n'));
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('root-key.pem'), '-out', p('root-cert.pem'), '-days', '30',
      '-subj', '/C=US/O=Root Org/CN=Root', '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', p('ca-key.pem'), '-out', p('ca.csr'),
      '-multivalue-rdn', '-subj', '/C=DE/ST=Bayern/O=Acme Ünïcode GmbH/OU=Mesh+CN=Intermediate/emailAddress=ca@example.org']);
    openssl(['x509', '-req', '-in', p('ca.csr'), '-CA', p('root-cert.pem'), '-CAkey', p('root-key.pem'), '-CAcreateserial',
      '-out', p('ca-cert.pem'), '-days', '20', '-extfile', p('ext.cnf'), '-extensions', 'ca_ext']);
    const ca = await CertificateAuthority.open({ trustDomain: 'example.org', plugin: { certFile: p('ca-cert.pem'), keyFile: p('ca-key.pem'), rootFile: p('root-cert.pem') } });
    const id = { trustDomain: 'example.org', namespace: 'ns1', serviceAccount: 'sa1' };
    const issued = ca.issueWorkloadCertificate((await generateKeyAndCsr(id)).csrPem, id);
    writeFileSync(p('leaf.pem'), issued.certPem);
    writeFileSync(p('untrusted.pem'), issued.certChainPem.slice(issued.certPem.length));
    expect(openssl(['verify', '-CAfile', p('root-cert.pem'), '-untrusted', p('untrusted.pem'), p('leaf.pem')])).toContain('OK');
    const names = ['-nameopt', 'RFC2253,-esc_msb'];
    const caSubject = openssl(['x509', '-in', p('ca-cert.pem'), '-noout', '-subject', ...names]).replace(/^subject=/, '');
    expect(caSubject).toContain('CN=Intermediate+OU=Mesh');
    expect(openssl(['x509', '-in', p('leaf.pem'), '-noout', '-issuer', ...names]).replace(/^issuer=/, '')).toBe(caSubject);
    expect(openssl(['x509', '-in', p('leaf.pem'), '-noout', '-text'])).toMatch(/Signature Algorithm: ecdsa-with-SHA384/);
  });

  it('reports the file at fault when the key does not match or the chain is broken', async () => {
    await expect(CertificateAuthority.open({ trustDomain: 'x.org', plugin: { ...a, keyFile: b.keyFile } })).rejects.toMatchObject({
      code: 'CA_LOAD',
      reason: expect.stringContaining(b.keyFile),
    });
    await expect(CertificateAuthority.open({ trustDomain: 'x.org', plugin: { ...a, rootFile: b.rootFile } })).rejects.toMatchObject({
      code: 'CA_LOAD',
    });
    await expect(CertificateAuthority.open({ trustDomain: 'x.org', plugin: { ...a, certFile: join(a.certFile, 'missing') } })).rejects.toMatchObject({
      code: 'CA_LOAD',
    });
  });
});
