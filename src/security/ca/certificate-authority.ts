import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Extension, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { CaError } from '../errors.js';
import { CLUSTER_NAME_RE, isValidIdentity, spiffeId, type WorkloadIdentity } from '../identity.js';
import { readIfExists, writeSecretFile } from '../state-files.js';
import { parseCsrDer, type ParsedCsr } from './csr-parse.js';
import { derToPem, pemToDer, splitPemCertificates } from './der-sign.js';
import {
  KEY_USAGE,
  buildCertificate,
  emptyName,
  extensions,
  keyIdOf,
  organizationName,
  organizationalUnitName,
  parseSpki,
  preEncoded,
  randomSerial,
  readCertificateFields,
  signatureSchemeFor,
  type SubjectAltNames,
} from './x509.js';

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
  /** Its private key (ca-key.pem): RSA or ECDSA P-256/P-384, PKCS#1, SEC1 or PKCS#8. Leaves are signed with it. */
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
  /** Key of a root created on first start (default ECDSA P-256); an existing root keeps its own. */
  rootKeyType?: RootKeyType;
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
  /** Subject of the signing certificate: the issuer of everything it signs (pre-encoded: write-only). */
  issuerName: Name;
  /** The signing certificate's subjectKeyIdentifier, for the leaves' authorityKeyIdentifier. */
  signingKeyId: Buffer;
  /** PEMs between the signing cert (included, first) and the root (excluded). */
  intermediatesPem: string[];
  rootCertPem: string;
  signingNotAfter: number;
}

/** Key type of a self-signed root created on first start. Existing roots (RSA included) are kept. */
export type RootKeyType = 'ec-p256' | 'rsa-2048';

/** A certificate together with its freshly generated key (the operator's own serving identity). */
export interface IssuedKeyPair extends IssuedCertificate {
  /** PKCS#8 PEM; never log it. */
  privateKeyPem: string;
}

/** What a workload certificate is bound to besides its SPIFFE identity. */
export interface WorkloadCertificateBinding {
  /** The cluster the workload joined with: the certificate's subject becomes `OU=<cluster>` (one RDN). */
  cluster?: string;
}

export interface ServerCertificateRequest {
  identity: WorkloadIdentity;
  dnsNames?: string[];
  ipAddresses?: string[];
  ttlMs: number;
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
  /** The same for every leaf this CA signs (only the SAN differs): encoded once. */
  private readonly leafExtensions: Extension[];

  private constructor(options: CertificateAuthorityOptions, material: SigningMaterial, mode: 'self-signed' | 'plugin') {
    this.trustDomain = options.trustDomain;
    this.material = material;
    this.rootCertPem = material.rootCertPem;
    this.rootFingerprint256 = new X509Certificate(material.rootCertPem).fingerprint256;
    this.mode = mode;
    this.maxTtlMs = options.maxWorkloadTtlMs ?? DEFAULT_MAX_WORKLOAD_CERT_TTL_MS;
    this.now = options.now ?? Date.now;
    this.skewMs = options.notBeforeSkewMs ?? NOT_BEFORE_SKEW_MS;
    this.leafExtensions = [
      extensions.basicConstraints(false),
      extensions.keyUsage(KEY_USAGE.digitalSignature | KEY_USAGE.keyEncipherment),
      extensions.serverAndClientAuth(),
      extensions.authorityKeyId(material.signingKeyId),
    ].map(preEncoded);
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

  /** `rsa` or `ec`: what the CA signs with (a plug-in CA keeps its own key type). */
  get signingKeyType(): string {
    return this.material.signingKey.asymmetricKeyType ?? 'unknown';
  }

  /**
   * Signs a workload certificate for `identity` over the public key of `csrPem` (ECDSA P-256/P-384
   * or RSA ≥ 2048; the CSR's own signature must verify). SAN: exactly one URI, the SPIFFE id
   * (critical when the subject is empty, as Istio); key usage digitalSignature+keyEncipherment;
   * EKU serverAuth+clientAuth. With `binding.cluster` the subject is `OU=<cluster>` (peers read
   * it as node's `peerCertificate.subject.OU`); without it the subject is empty. Throws CaError.
   */
  issueWorkloadCertificate(
    csrPem: string,
    identity: WorkloadIdentity,
    ttlMs: number = DEFAULT_WORKLOAD_CERT_TTL_MS,
    binding: WorkloadCertificateBinding = {},
  ): IssuedCertificate {
    this.checkIdentity(identity);
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > this.maxTtlMs) {
      throw new CaError('TTL', `requested TTL ${ttlMs} ms is outside (0, ${this.maxTtlMs}] ms`);
    }
    const subject = binding.cluster === undefined ? emptyName() : organizationalUnitName(checkedCluster(binding.cluster));
    return this.sign(parseCsrPublicKey(csrPem), identity, {}, ttlMs, subject);
  }

  /**
   * The operator's own serving certificate (bootstrap and discovery endpoints): a fresh P-256 key,
   * the SPIFFE id of `identity` plus DNS/IP names so hostname-checking clients (curl, openssl) accept
   * it. Not bounded by the workload maximum TTL: the operator renews it when it restarts.
   */
  async issueServerCertificate(request: ServerCertificateRequest): Promise<IssuedKeyPair> {
    this.checkIdentity(request.identity);
    const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
    const spki = parseSpki(publicKey.export({ type: 'spki', format: 'der' }));
    const issued = this.sign(spki, request.identity, { dnsNames: request.dnsNames, ipAddresses: request.ipAddresses }, request.ttlMs);
    return { ...issued, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
  }

  private checkIdentity(identity: WorkloadIdentity): void {
    if (!isValidIdentity(identity)) {
      throw new CaError('IDENTITY', `identity ${JSON.stringify(identity)} is not a valid SPIFFE identity`);
    }
    if (identity.trustDomain !== this.trustDomain) {
      throw new CaError('IDENTITY', `trust domain ${identity.trustDomain} is not this CA's (${this.trustDomain})`);
    }
  }

  private sign(
    spki: SubjectPublicKeyInfo,
    identity: WorkloadIdentity,
    names: Omit<SubjectAltNames, 'uris'>,
    ttlMs: number,
    subject: Name = emptyName(),
  ): IssuedCertificate {
    const now = this.now();
    // Whole seconds: what the certificate can hold, so the returned dates equal the certificate's.
    const notBefore = Math.floor((now - this.skewMs) / 1000) * 1000;
    const notAfter = Math.floor(Math.min(now + ttlMs, this.material.signingNotAfter) / 1000) * 1000;
    const uri = spiffeId(identity);
    const serial = randomSerial();
    let der: Buffer;
    try {
      der = buildCertificate(
        {
          serial,
          issuer: this.material.issuerName,
          subject,
          notBefore: new Date(notBefore),
          notAfter: new Date(notAfter),
          spki,
          extensions: [...this.leafExtensions, extensions.subjectAltName({ uris: [uri], ...names }, subject.length === 0)],
        },
        this.material.signingKey,
      );
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
      serialNumber: serial.toString('hex').toUpperCase(),
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
    };
  }
}

function checkedCluster(cluster: string): string {
  if (typeof cluster !== 'string' || !CLUSTER_NAME_RE.test(cluster)) {
    throw new CaError('IDENTITY', `cluster name ${JSON.stringify(cluster)} is not a DNS label`);
  }
  return cluster;
}

/** Bounded, well-formed, self-signed, and a key the mesh accepts (P-256/P-384, or RSA of at least 2048 bits). */
function parseCsrPublicKey(csrPem: string): SubjectPublicKeyInfo {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_PEM_BYTES) {
    throw new CaError('CSR_PARSE', 'CSR is not a PEM string of bounded size');
  }
  let parsed: ParsedCsr;
  try {
    parsed = parseCsrDer(pemToDer(csrPem, '(?:NEW )?CERTIFICATE REQUEST'));
  } catch (error) {
    throw new CaError('CSR_PARSE', `CSR parse failed: ${(error as Error).message}`, { cause: error });
  }
  const acceptable =
    (parsed.keyType === 'rsa' && parsed.keyBits >= 2048) ||
    (parsed.keyType === 'ec' && (parsed.curve === 'prime256v1' || parsed.curve === 'secp384r1'));
  if (!acceptable) {
    const detail = parsed.keyType === 'ec' ? parsed.curve : parsed.keyBits;
    throw new CaError('CSR_KEY', `CSR key is ${parsed.keyType}/${detail}; ECDSA P-256/P-384 or RSA of at least 2048 bits is required`);
  }
  if (!parsed.signatureValid) throw new CaError('CSR_SIGNATURE', 'CSR signature does not verify');
  return parsed.spki;
}

function issuerFields(certPem: string, file: string): { issuerName: Name; signingKeyId: Buffer; notAfter: number } {
  try {
    const der = pemToDer(certPem, 'CERTIFICATE');
    const fields = readCertificateFields(der);
    return {
      issuerName: fields.subject,
      signingKeyId: fields.subjectKeyId ?? keyIdOf(fields.spki),
      notAfter: Date.parse(new X509Certificate(der).validTo),
    };
  } catch (error) {
    throw new CaError('CA_LOAD', `${file}: cannot parse certificate: ${(error as Error).message}`, { cause: error });
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
  try {
    signatureSchemeFor(key);
  } catch (error) {
    throw new CaError('CA_LOAD', `${file}: CA key must be RSA or ECDSA P-256/P-384: ${(error as Error).message}`);
  }
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
  const isRoot = new X509Certificate(signingCertPem).fingerprint256 === root.fingerprint256;
  const fields = issuerFields(signingCertPem, files.certFile);
  return {
    signingKey,
    issuerName: preEncoded(fields.issuerName),
    signingKeyId: fields.signingKeyId,
    intermediatesPem: isRoot ? [] : intermediatesPem,
    rootCertPem,
    signingNotAfter: fields.notAfter,
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
  const fields = issuerFields(certPem, certPath);
  return {
    signingKey,
    issuerName: preEncoded(fields.issuerName),
    signingKeyId: fields.signingKeyId,
    intermediatesPem: [],
    rootCertPem: certPem,
    signingNotAfter: fields.notAfter,
  };
}

async function createRoot(options: CertificateAuthorityOptions): Promise<{ certPem: string; keyPem: string }> {
  const { privateKey, publicKey } =
    options.rootKeyType === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  const now = (options.now ?? Date.now)();
  const spki = parseSpki(publicKey.export({ type: 'spki', format: 'der' }));
  const name = organizationName(options.organization ?? options.trustDomain);
  const der = buildCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date(now - NOT_BEFORE_SKEW_MS),
      notAfter: new Date(now + (options.rootTtlMs ?? DEFAULT_ROOT_CERT_TTL_MS)),
      spki,
      extensions: [
        extensions.basicConstraints(true),
        extensions.keyUsage(KEY_USAGE.digitalSignature | KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign),
        extensions.subjectKeyId(keyIdOf(spki)),
      ],
    },
    privateKey,
  );
  return { certPem: derToPem(der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
