import { X509Certificate } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CertificateInfo } from '../discovery/protocol.js';
import type { ProxyIdentity, ProxySnapshot, UpstreamCluster } from '../mesh/snapshot.js';
import {
  CertificateStore,
  createInboundFilter,
  createTlsProvider,
  isCaError,
  requestBootstrapCertificate,
  spiffeId,
  splitPemCertificates,
  type WorkloadCertificate,
} from '../security/index.js';
import type { InboundFilter, ProxyTlsProvider } from './extensions.js';

export interface MeshSecurityOptions {
  /** The operator's `POST /v1/bootstrap` URL. */
  bootstrapUrl: string;
  cluster: string;
  /** The cluster's join token (never logged: pino redacts `token`). */
  token: string;
  trustDomain: string;
  /** https bootstrap URL: the CA bundle to verify the operator with. */
  caPem?: string;
  /** How long to keep retrying the first certificate while the operator is unreachable (default 60 s). */
  bootstrapTimeoutMs?: number;
  /** Workload certificate lifetime to ask for (default: the CA's, 24 h). */
  ttlMs?: number;
}

/** A proxy's workload identity and what the proxy and the discovery client need from it. */
export interface ProxySecurity {
  store: CertificateStore;
  tls: ProxyTlsProvider;
  inboundFilter: InboundFilter;
  /** What the discovery client reports for `proxy-config secret`. */
  certificateInfo(): CertificateInfo;
  /** The agent calls this with every snapshot before applying it (auto mTLS looks at its endpoints). */
  observeSnapshot(snapshot: ProxySnapshot | undefined): void;
  stop(): void;
}

/**
 * Gets the proxy's first workload certificate with the cluster's join token, keeps it in a
 * CertificateStore rotating at half-life (each renewal is another join-token exchange with a fresh
 * key), and adapts src/security's TLS provider and inbound filter to the proxy.
 */
export async function startProxySecurity(options: MeshSecurityOptions, identity: ProxyIdentity, logger?: Logger): Promise<ProxySecurity> {
  const issue = (): Promise<WorkloadCertificate> =>
    requestBootstrapCertificate({
      url: options.bootstrapUrl,
      cluster: options.cluster,
      token: options.token,
      trustDomain: options.trustDomain,
      namespace: identity.namespace,
      serviceAccount: identity.serviceAccount,
      ttlMs: options.ttlMs,
      caPem: options.caPem,
    });
  const initial = await firstCertificate(issue, options.bootstrapTimeoutMs ?? 60_000, logger);
  logger?.info({ spiffeId: initial.spiffeId, serial: initial.serialNumber, notAfter: initial.notAfter }, 'workload certificate issued');
  const store = await CertificateStore.create({ renew: issue, initial, logger });
  let snapshot: ProxySnapshot | undefined;
  const provider = createTlsProvider(store, { trustDomain: options.trustDomain });
  const tls: ProxyTlsProvider = {
    serverContext: () => provider.serverContext(),
    clientContext(cluster) {
      const effective = cluster.tls ? cluster : autoMutualTls(cluster, snapshot, options.trustDomain);
      const opts = effective ? provider.clientContext(effective) : undefined;
      // The serial makes the proxy's cluster definition change after a rotation, so the next snapshot
      // that is applied opens new pools with the new certificate (unknown keys are ignored by tls.connect).
      return opts ? { ...opts, trellisCertSerial: store.current.serialNumber } : undefined;
    },
  };
  const filter = createInboundFilter();
  return {
    store,
    tls,
    inboundFilter: (req, ctx) => filter(req, ctx),
    certificateInfo: () => certificateInfoOf(store.current),
    observeSnapshot(next) {
      if (next) snapshot = next;
    },
    stop: () => store.stop(),
  };
}

/**
 * Auto mTLS, decided per cluster (the proxy asks per cluster, not per endpoint): ISTIO_MUTUAL when
 * the mesh enables it and every endpoint of the cluster has a sidecar (tlsMode `istio`); the
 * server must then present one of the endpoints' service-account identities (secure naming).
 * A cluster mixing sidecar and plain endpoints stays plaintext.
 */
export function autoMutualTls(cluster: UpstreamCluster, snapshot: ProxySnapshot | undefined, trustDomain: string): UpstreamCluster | undefined {
  if (!snapshot || snapshot.mesh.enableAutoMtls === false) return undefined;
  const endpoints = snapshot.endpoints.find((e) => e.cluster === cluster.name)?.endpoints ?? [];
  if (endpoints.length === 0 || endpoints.some((e) => e.tlsMode !== 'istio')) return undefined;
  const named = endpoints.every((e) => e.serviceAccount && e.namespace);
  const sans = named
    ? [...new Set(endpoints.map((e) => spiffeId({ trustDomain: snapshot.mesh.trustDomain || trustDomain, namespace: e.namespace!, serviceAccount: e.serviceAccount! })))].sort()
    : [];
  return { ...cluster, tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: sans } };
}

function certificateInfoOf(cert: WorkloadCertificate): CertificateInfo {
  const leaf = splitPemCertificates(cert.certChainPem)[0];
  return {
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    spiffeId: cert.spiffeId,
    issuer: leaf ? new X509Certificate(leaf).issuer : undefined,
  };
}

/** Retries while the operator is unreachable or not ready; a refused token fails at once. */
async function firstCertificate(issue: () => Promise<WorkloadCertificate>, timeoutMs: number, logger?: Logger): Promise<WorkloadCertificate> {
  const deadline = Date.now() + timeoutMs;
  let wait = 200;
  for (;;) {
    try {
      return await issue();
    } catch (error) {
      const retryable = isCaError(error) && error.code === 'CA_NOT_READY';
      if (!retryable || Date.now() + wait > deadline) throw error;
      logger?.warn({ err: (error as Error).message, retryInMs: wait }, 'bootstrap certificate not available yet');
      await delay(wait);
      wait = Math.min(wait * 2, 5000);
    }
  }
}
