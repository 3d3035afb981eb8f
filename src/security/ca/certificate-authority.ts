import {
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { CaError } from '../errors.js';
import { isValidIdentity, spiffeId, type WorkloadIdentity } from '../identity.js';
import { readIfExists, writeSecretFile } from '../state-files.js';
import { parseCsrDer, pemToDer, type ParsedCsr } from './csr-parse.js';
import { derToPem, signCertificateDer, splitPemCertificates } from './der-sign.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export const DEFAULT_WORKLOAD_CERT_TTL_MS = 24 * 60 * 60 * 1000;
/** Istio's default maximum workload certificate lifetime (MAX_WORKLOAD_CERT_TTL, 90 days). */
export const DEFAULT_MAX_WORKLOAD_CERT_TTL_MS = 90 * 24 * 60 * 60 * 1000;
export const DEFAULT_ROOT_CERT_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000;
/** Backdating for clock skew between the CA and the peers that verify the certificate. */
const NOT_BEFORE_SKEW_MS = 60 * 1000;
/** Bounds a CSR before parsing it (a 4096-bit RSA CSR is ~1.7 KB of PEM). */
const MAX_CSR_PEM_BYTES = 16 * 1024;

export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';

/** Istio "cacerts" layout: a user-supplied signing CA (root or intermediate). */
export interface PluginCaFiles {
  /** Signing certificate (ca-cert.pem). */
  certFile: string;
  /** Its private key (ca-key.pem), RSA, PKCS#1 or PKCS#8. */
  keyFile: string;
  /** The mesh root (root-cert.pem). */
  rootFile: string;
  /** ca-cert followed by intermediates up to the root (cert-chain.pem); optional when the signing cert is the root. */
  chainFile?: string;
}

export interface CertificateAuthorityOptions {
  trustDomain: string;
  /** Self-signed mode: the root lives in `<stateDir>/ca/` (0700 dir, 0600 files); created on first start. */
  stateDir?: string;
  /** Plug-in mode: wins over stateDir. */
  plugin?: PluginCaFiles;
  /** Organisation in the self-signed root's subject; defaults to the trust domain (as istiod). */
  organization?: string;
  rootTtlMs?: number;
  maxWorkloadTtlMs?: number;
  /** Backdating of notBefore for clock skew between peers; default 60 s. */
  notBeforeSkewMs?: number;
  /** Injected clock (tests). */
  now?: () => number;
}

export interface IssuedCertificate {
  /** The leaf alone. */
  certPem: string;
  /** Leaf followed by intermediates (what a TLS endpoint serves as `cert`). */
  certChainPem: string;
  /** Istio's CreateCertificate shape: leaf, intermediates…, root last. */
  chain: string[];
  rootCertPem: string;
  spiffeId: string;
  /** Upper-case hex, as node's X509Certificate.serialNumber prints it. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

interface SigningMaterial {
  signingKey: KeyObject;
  signingCert: forge.pki.Certificate;
  /** PEMs between the signing cert (included, first) and the root (excluded). */
  intermediatesPem: string[];
  rootCertPem: string;
  signingKeyId: string;
  signingNotAfter: number;
}

/**
 * The mesh certificate authority. Identity always comes from the caller's authentication
 * (`identity` argument), never from the CSR: only the CSR's public key is used.
 */
export class CertificateAuthority {
  readonly trustDomain: string;
  readonly rootCertPem: string;
  /** SHA-256 fingerprint of the root, `AB:CD:…` (node's X509Certificate.fingerprint256). */
  readonly rootFingerprint256: string;
  /** `self-signed` (state dir) or `plugin` (user-supplied files). */
  readonly mode: 'self-signed' | 'plugin';
  private readonly material: SigningMaterial;
  private readonly maxTtlMs: number;
  private readonly now: () => number;
  private readonly skewMs: number;

  private constructor(options: CertificateAuthorityOptions, material: SigningMaterial, mode: 'self-signed' | 'plugin') {
    this.trustDomain = options.trustDomain;
    this.material = material;
    this.rootCertPem = material.rootCertPem;
    this.rootFingerprint256 = new X509Certificate(material.rootCertPem).fingerprint256;
    this.mode = mode;
    this.maxTtlMs = options.maxWorkloadTtlMs ?? DEFAULT_MAX_WORKLOAD_CERT_TTL_MS;
    this.now = options.now ?? Date.now;
    this.skewMs = options.notBeforeSkewMs ?? NOT_BEFORE_SKEW_MS;
  }

  /** Opens the CA: loads the plug-in files, or loads (or creates, on first start) the self-signed root. */
  static async open(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    if (!isValidIdentity({ trustDomain: options.trustDomain, namespace: 'x', serviceAccount: 'x' })) {
      throw new CaError('CA_LOAD', `invalid trust domain ${JSON.stringify(options.trustDomain)}`);
    }
    if (options.plugin) return new CertificateAuthority(options, await loadPluginCa(options.plugin), 'plugin');
    if (!options.stateDir) throw new CaError('CA_LOAD', 'neither stateDir nor plugin files were given');
    return new CertificateAuthority(options, await loadOrCreateSelfSigned(options), 'self-signed');
  }

  /** PEMs of the intermediates between a workload leaf and the root (empty for a self-signed root). */
  get intermediatesPem(): string[] {
    return this.material.intermediatesPem.filter((pem) => pem !== this.rootCertPem);
  }

  /**
   * Signs a workload certificate for `identity` over the public key of `csrPem` (RSA; the CSR's
   * own signature must verify). SAN: the SPIFFE URI (critical, empty subject, as Istio); key usage
   * digitalSignature+keyEncipherment; EKU serverAuth+clientAuth. Throws CaError.
   */
  issueWorkloadCertificate(
    csrPem: string,
    identity: WorkloadIdentity,
    ttlMs: number = DEFAULT_WORKLOAD_CERT_TTL_MS,
  ): IssuedCertificate {
    if (!isValidIdentity(identity)) {
      throw new CaError('IDENTITY', `identity ${JSON.stringify(identity)} is not a valid SPIFFE identity`);
    }
    if (identity.trustDomain !== this.trustDomain) {
      throw new CaError('IDENTITY', `trust domain ${identity.trustDomain} is not this CA's (${this.trustDomain})`);
    }
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > this.maxTtlMs) {
      throw new CaError('TTL', `requested TTL ${ttlMs} ms is outside (0, ${this.maxTtlMs}] ms`);
    }
    const publicKey = parseCsrPublicKey(csrPem);
    const now = this.now();
    const notBefore = now - this.skewMs;
    const notAfter = Math.min(now + ttlMs, this.material.signingNotAfter);
    const uri = spiffeId(identity);

    let der: Buffer;
    let cert: forge.pki.Certificate;
    try {
      cert = forge.pki.createCertificate();
      cert.publicKey = publicKey;
      cert.serialNumber = randomSerialHex();
      cert.validity.notBefore = new Date(notBefore);
      cert.validity.notAfter = new Date(notAfter);
      cert.setSubject([]);
      cert.setIssuer(this.material.signingCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'authorityKeyIdentifier', keyIdentifier: this.material.signingKeyId },
        // 6 = uniformResourceIdentifier; critical because the subject is empty (RFC 5280 §4.2.1.6).
        { name: 'subjectAltName', critical: true, altNames: [{ type: 6, value: uri }] },
      ]);
      der = signCertificateDer(cert, this.material.signingKey);
    } catch (error) {
      throw new CaError('CERT_GEN', `signing failed: ${(error as Error).message}`, { cause: error });
    }
    const certPem = derToPem(der);
    const intermediates = this.intermediatesPem;
    return {
      certPem,
      certChainPem: [certPem, ...intermediates].join(''),
      chain: [certPem, ...intermediates, this.rootCertPem],
      rootCertPem: this.rootCertPem,
      spiffeId: uri,
      serialNumber: cert.serialNumber.toUpperCase(),
      notBefore: new Date(Math.floor(notBefore / 1000) * 1000),
      notAfter: new Date(Math.floor(notAfter / 1000) * 1000),
    };
  }
}

function randomSerialHex(): string {
  const bytes = randomBytes(16);
  // Positive and minimal in DER: top bit clear, first byte never zero.
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function parseCsrPublicKey(csrPem: string): forge.pki.rsa.PublicKey {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_PEM_BYTES) {
    throw new CaError('CSR_PARSE', 'CSR is not a PEM string of bounded size');
  }
  let parsed: ParsedCsr;
  try {
    parsed = parseCsrDer(pemToDer(csrPem, '(?:NEW )?CERTIFICATE REQUEST'));
  } catch (error) {
    throw new CaError('CSR_PARSE', `CSR parse failed: ${(error as Error).message}`, { cause: error });
  }
  if (parsed.keyType !== 'rsa' || parsed.keyBits < 2048) {
    throw new CaError('CSR_KEY', `CSR key is ${parsed.keyType}/${parsed.keyBits}; RSA of at least 2048 bits is required`);
  }
  if (!parsed.signatureValid) throw new CaError('CSR_SIGNATURE', 'CSR signature does not verify');
  return parsed.publicKey;
}

function subjectKeyIdOf(cert: forge.pki.Certificate): string {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  if (ext?.subjectKeyIdentifier) return forge.util.hexToBytes(ext.subjectKeyIdentifier);
  return cert.generateSubjectKeyIdentifier().getBytes();
}

function forgeCert(pem: string, file: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (error) {
    throw new CaError('CA_LOAD', `${file}: cannot parse certificate (RSA only): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function keyMatchesCert(key: KeyObject, certPem: string): boolean {
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const fromCert = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return fromKey.equals(fromCert);
}

async function readRequired(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CaError('CA_LOAD', `${path}: ${(error as NodeJS.ErrnoException).code ?? 'read failed'}`, { cause: error });
  }
}

function privateKeyFrom(pem: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new CaError('CA_LOAD', `${file}: not a private key`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new CaError('CA_LOAD', `${file}: CA key must be RSA`);
  return key;
}

async function loadPluginCa(files: PluginCaFiles): Promise<SigningMaterial> {
  const [certPem, keyPem, rootPem, chainPem] = await Promise.all([
    readRequired(files.certFile),
    readRequired(files.keyFile),
    readRequired(files.rootFile),
    files.chainFile ? readRequired(files.chainFile) : Promise.resolve(''),
  ]);
  const signingCertPem = splitPemCertificates(certPem)[0];
  const rootCertPem = splitPemCertificates(rootPem)[0];
  if (!signingCertPem) throw new CaError('CA_LOAD', `${files.certFile}: no certificate`);
  if (!rootCertPem) throw new CaError('CA_LOAD', `${files.rootFile}: no certificate`);
  const signingKey = privateKeyFrom(keyPem, files.keyFile);
  if (!keyMatchesCert(signingKey, signingCertPem)) {
    throw new CaError('CA_LOAD', `${files.keyFile}: key does not match ${files.certFile}`);
  }
  const root = new X509Certificate(rootCertPem);
  const seen = new Set<string>([new X509Certificate(signingCertPem).fingerprint256, root.fingerprint256]);
  const intermediatesPem = [signingCertPem];
  for (const pem of splitPemCertificates(chainPem)) {
    const fingerprint = new X509Certificate(pem).fingerprint256;
    if (seen.has(fingerprint)) continue;
    seen.add(fingerprint);
    intermediatesPem.push(pem);
  }
  // Every link must verify up to the root, or workloads would get a chain nobody accepts.
  const links = [...intermediatesPem, rootCertPem];
  for (let i = 0; i < links.length - 1; i++) {
    const child = new X509Certificate(links[i]);
    const parent = new X509Certificate(links[i + 1]);
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new CaError('CA_LOAD', `${files.chainFile ?? files.certFile}: chain link ${i} (${child.subject}) is not signed by the next certificate`);
    }
  }
  if (!root.verify(root.publicKey)) throw new CaError('CA_LOAD', `${files.rootFile}: root is not self-signed`);
  const signingCert = forgeCert(signingCertPem, files.certFile);
  const isRoot = new X509Certificate(signingCertPem).fingerprint256 === root.fingerprint256;
  return {
    signingKey,
    signingCert,
    intermediatesPem: isRoot ? [] : intermediatesPem,
    rootCertPem,
    signingKeyId: subjectKeyIdOf(signingCert),
    signingNotAfter: signingCert.validity.notAfter.getTime(),
  };
}

async function loadOrCreateSelfSigned(options: CertificateAuthorityOptions): Promise<SigningMaterial> {
  const dir = join(options.stateDir!, 'ca');
  const certPath = join(dir, ROOT_CERT_FILE);
  const keyPath = join(dir, ROOT_KEY_FILE);
  let [certPem, keyPem] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)]);
  if ((certPem === undefined) !== (keyPem === undefined)) {
    // Never overwrite half a CA: that would silently invalidate every issued certificate.
    throw new CaError('CA_LOAD', `${dir}: found only one of ${ROOT_CERT_FILE} and ${ROOT_KEY_FILE}`);
  }
  if (certPem === undefined || keyPem === undefined) {
    ({ certPem, keyPem } = await createRoot(options));
    await writeSecretFile(keyPath, keyPem);
    await writeSecretFile(certPath, certPem);
  }
  const signingKey = privateKeyFrom(keyPem, keyPath);
  if (!keyMatchesCert(signingKey, certPem)) throw new CaError('CA_LOAD', `${keyPath}: key does not match ${certPath}`);
  const signingCert = forgeCert(certPem, certPath);
  return {
    signingKey,
    signingCert,
    intermediatesPem: [],
    rootCertPem: certPem,
    signingKeyId: subjectKeyIdOf(signingCert),
    signingNotAfter: signingCert.validity.notAfter.getTime(),
  };
}

async function createRoot(options: CertificateAuthorityOptions): Promise<{ certPem: string; keyPem: string }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const now = (options.now ?? Date.now)();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(now - NOT_BEFORE_SKEW_MS);
  cert.validity.notAfter = new Date(now + (options.rootTtlMs ?? DEFAULT_ROOT_CERT_TTL_MS));
  const subject = [{ shortName: 'O', value: options.organization ?? options.trustDomain }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true, digitalSignature: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  const certPem = derToPem(signCertificateDer(cert, privateKey));
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { certPem, keyPem };
}
