import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { generateKeyAndCsr } from '../ca/csr.js';
import { splitPemCertificates } from '../ca/der-sign.js';
import { spiffeIdFromSubjectAltName, type WorkloadIdentity } from '../identity.js';

/** A workload's key and certificate as the data plane holds them (in memory only). */
export interface WorkloadCertificate {
  privateKeyPem: string;
  /** Leaf first, then intermediates. */
  certChainPem: string;
  /** Trusted mesh root(s), PEM bundle. */
  rootCertPem: string;
  spiffeId?: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

/** Builds a WorkloadCertificate from PEMs, reading validity, serial and SPIFFE id from the leaf. */
export function workloadCertificateFrom(privateKeyPem: string, certChainPem: string, rootCertPem: string): WorkloadCertificate {
  const leafPem = splitPemCertificates(certChainPem)[0];
  if (!leafPem) throw new Error('certificate chain holds no certificate');
  const leaf = new X509Certificate(leafPem);
  return {
    privateKeyPem,
    certChainPem,
    rootCertPem,
    spiffeId: spiffeIdFromSubjectAltName(leaf.subjectAltName),
    serialNumber: leaf.serialNumber,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}

/** What a signer returns for a CSR: the bootstrap/renewal response shape (IssuedCertificate fits). */
export interface SignedChain {
  certChainPem: string;
  rootCertPem: string;
}

/**
 * A renew() for CertificateStore: new key + CSR for `identity`, signed by `sign` (the CA in
 * process, or a call to the operator over the mTLS discovery stream / bootstrap endpoint).
 */
export function renewerFor(
  identity: WorkloadIdentity,
  sign: (csrPem: string) => Promise<SignedChain> | SignedChain,
): () => Promise<WorkloadCertificate> {
  return async () => {
    const { privateKeyPem, csrPem } = await generateKeyAndCsr(identity);
    const signed = await sign(csrPem);
    return workloadCertificateFrom(privateKeyPem, signed.certChainPem, signed.rootCertPem);
  };
}

export interface CertificateStoreOptions {
  /** Issues a fresh certificate (new key). Called at start when `initial` is absent, then at each rotation. */
  renew: () => Promise<WorkloadCertificate>;
  initial?: WorkloadCertificate;
  /** Fraction of the lifetime after which to rotate; Istio rotates at half-life (0.5). */
  rotateAtFraction?: number;
  /** Retry backoff after a failed renew: doubles from min to max. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Never rotate again sooner than this after a rotation (guards against short or backdated certs). */
  minRotationIntervalMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** Node's setTimeout overflows above 2^31-1 ms (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Holds the workload's current key/cert and the SecureContext built from it. Rotation swaps the
 * context: connections made after a rotation use the new certificate; existing connections keep
 * theirs and are never dropped. Events: `rotated` (WorkloadCertificate), `rotation-failed` (Error).
 */
export class CertificateStore extends EventEmitter {
  private cert: WorkloadCertificate;
  private context: SecureContext;
  private timer: NodeJS.Timeout | undefined;
  private lastRotationAt: number;
  private failures = 0;
  private inFlight: Promise<void> | undefined;
  private stopped = true;
  private readonly options: Required<Omit<CertificateStoreOptions, 'initial' | 'logger'>> & Pick<CertificateStoreOptions, 'logger'>;

  private constructor(options: CertificateStoreOptions, initial: WorkloadCertificate) {
    super();
    this.options = {
      renew: options.renew,
      rotateAtFraction: options.rotateAtFraction ?? 0.5,
      retryMinMs: options.retryMinMs ?? 1000,
      retryMaxMs: options.retryMaxMs ?? 60_000,
      minRotationIntervalMs: options.minRotationIntervalMs ?? 1000,
      logger: options.logger,
      now: options.now ?? Date.now,
    };
    this.cert = initial;
    this.context = contextFor(initial);
    this.lastRotationAt = this.options.now();
  }

  /** Creates the store (issuing the first certificate unless `initial` is given) and starts rotation. */
  static async create(options: CertificateStoreOptions): Promise<CertificateStore> {
    const initial = options.initial ?? (await options.renew());
    const store = new CertificateStore(options, initial);
    store.start();
    return store;
  }

  get current(): WorkloadCertificate {
    return this.cert;
  }

  /** Key + chain + mesh root; valid for both server (inbound) and client (ISTIO_MUTUAL) use. */
  get secureContext(): SecureContext {
    return this.context;
  }

  get rootCertPem(): string {
    return this.cert.rootCertPem;
  }

  /** Epoch ms at which the next rotation is due. */
  rotationDueAt(): number {
    const { notBefore, notAfter } = this.cert;
    const lifetime = notAfter.getTime() - notBefore.getTime();
    const due = notBefore.getTime() + lifetime * this.options.rotateAtFraction;
    return Math.max(due, this.lastRotationAt + this.options.minRotationIntervalMs);
  }

  start(): void {
    this.stopped = false;
    this.schedule(this.rotationDueAt() - this.options.now());
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Replaces the certificate now (used by the scheduler, and by callers after a root change). */
  async rotateNow(): Promise<void> {
    this.inFlight ??= this.rotate().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Installs a certificate obtained elsewhere (e.g. pushed by the control plane). */
  install(cert: WorkloadCertificate): void {
    this.context = contextFor(cert);
    this.cert = cert;
    this.lastRotationAt = this.options.now();
    this.failures = 0;
    this.emit('rotated', cert);
    if (!this.stopped) this.schedule(this.rotationDueAt() - this.options.now());
  }

  private async rotate(): Promise<void> {
    try {
      const next = await this.options.renew();
      this.install(next);
      this.options.logger?.info({ serial: next.serialNumber, spiffeId: next.spiffeId, notAfter: next.notAfter }, 'workload certificate rotated');
    } catch (error) {
      this.failures += 1;
      const delay = Math.min(this.options.retryMaxMs, this.options.retryMinMs * 2 ** (this.failures - 1));
      this.options.logger?.warn({ err: error, retryInMs: delay }, 'workload certificate rotation failed');
      if (this.listenerCount('rotation-failed') > 0) this.emit('rotation-failed', error);
      if (!this.stopped) this.schedule(delay, true);
      throw error;
    }
  }

  /** `retry`: a failed renewal's retry runs whatever the due time (a manual rotateNow may have failed early). */
  private schedule(delayMs: number, retry = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Timers can fire early relative to a changed certificate; re-arm instead of rotating twice.
      if (!retry && this.rotationDueAt() > this.options.now() + 5) return this.schedule(this.rotationDueAt() - this.options.now());
      this.rotateNow().catch(() => undefined); // failure already logged and retried
    }, Math.min(MAX_TIMER_MS, Math.max(0, delayMs)));
    this.timer.unref();
  }
}

function contextFor(cert: WorkloadCertificate): SecureContext {
  return createSecureContext({ key: cert.privateKeyPem, cert: cert.certChainPem, ca: cert.rootCertPem });
}

/** What an admin API or `proxy-config secret` may show about a workload certificate: never the key. */
export interface CertificateSummary {
  /** Envoy/istioctl resource names. */
  name: 'default' | 'ROOTCA';
  spiffeId?: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  /** ACTIVE while valid, else EXPIRED (istioctl's STATUS / VALID CERT columns). */
  status: 'ACTIVE' | 'EXPIRED';
  certChainPem: string;
}

export function certificateSummaries(cert: WorkloadCertificate, now: number = Date.now()): CertificateSummary[] {
  const root = new X509Certificate(splitPemCertificates(cert.rootCertPem)[0] ?? cert.rootCertPem);
  const statusOf = (notBefore: Date, notAfter: Date) => (now >= notBefore.getTime() && now < notAfter.getTime() ? 'ACTIVE' : 'EXPIRED');
  const rootNotBefore = new Date(root.validFrom);
  const rootNotAfter = new Date(root.validTo);
  return [
    {
      name: 'default',
      spiffeId: cert.spiffeId,
      serialNumber: cert.serialNumber,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      status: statusOf(cert.notBefore, cert.notAfter),
      certChainPem: cert.certChainPem,
    },
    {
      name: 'ROOTCA',
      serialNumber: root.serialNumber,
      notBefore: rootNotBefore.toISOString(),
      notAfter: rootNotAfter.toISOString(),
      status: statusOf(rootNotBefore, rootNotAfter),
      certChainPem: cert.rootCertPem,
    },
  ];
}
