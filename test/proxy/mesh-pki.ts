import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertificateAuthority,
  CertificateStore,
  createTlsProvider,
  generateKeyAndCsr,
  workloadCertificateFrom,
  type SecurityTlsProvider,
  type WorkloadCertificate,
} from '../../src/security/index.js';

export const TRUST_DOMAIN = 'cluster.local';

export interface MeshWorkload {
  cert: WorkloadCertificate;
  store: CertificateStore;
  /** The TLS extension the proxy takes (`ProxyOptions.tls`). */
  tls: SecurityTlsProvider;
}

/**
 * A real mesh CA (self-signed root in a temp dir) issuing workload certificates, and the proxy TLS
 * provider src/security builds from them: what `startProxySecurity` does without the bootstrap hop.
 */
export class MeshPki {
  private readonly stores: CertificateStore[] = [];

  private constructor(
    readonly dir: string,
    readonly ca: CertificateAuthority,
  ) {}

  static async open(): Promise<MeshPki> {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-proxy-pki-'));
    return new MeshPki(dir, await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: dir }));
  }

  async workload(serviceAccount: string, namespace = 'default'): Promise<MeshWorkload> {
    const issue = async (): Promise<WorkloadCertificate> => {
      const identity = { trustDomain: TRUST_DOMAIN, namespace, serviceAccount };
      const { privateKeyPem, csrPem } = await generateKeyAndCsr(identity);
      const issued = this.ca.issueWorkloadCertificate(csrPem, identity);
      return workloadCertificateFrom(privateKeyPem, issued.certChainPem, issued.rootCertPem);
    };
    const cert = await issue();
    const store = await CertificateStore.create({ renew: issue, initial: cert });
    this.stores.push(store);
    return { cert, store, tls: createTlsProvider(store, { trustDomain: TRUST_DOMAIN }) };
  }

  get rootCertPem(): string {
    return this.ca.rootCertPem;
  }

  async close(): Promise<void> {
    for (const s of this.stores) s.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
