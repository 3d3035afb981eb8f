import { X509Certificate } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CertificateInfo } from '../discovery/protocol.js';
import type { Socket } from 'node:net';
import type { Endpoint, InboundPolicy, MeshSettings, ProxyIdentity, ProxySnapshot, UpstreamTls } from '../mesh/snapshot.js';
import {
  CertificateStore,
  createInboundFilter,
  createTlsProvider,
  isCaError,
  modeForPort,
  requestBootstrapCertificate,
  requestRenewedCertificate,
  spiffeId,
  splitPemCertificates,
  type WorkloadCertificate,
} from '../security/index.js';
import type { InboundContext, InboundDenial, InboundFilter, ProxyTlsProvider } from './extensions.js';
import type { ClientTlsOptions } from './upstream/cluster-manager.js';

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
  /** The agent calls this with every snapshot before applying it (auto mTLS follows its mesh settings). */
  observeSnapshot(snapshot: ProxySnapshot | undefined): void;
  stop(): void;
}

/**
 * Gets the proxy's first workload certificate with the cluster's join token, keeps it in a
 * CertificateStore rotating at half-life, and adapts src/security's TLS provider and inbound filter
 * to the proxy. A renewal is a fresh key signed over mutual TLS with the current certificate (no
 * token); only when the operator refuses that certificate (expired, another root, unbound) does the
 * proxy fall back to its join token.
 */
export async function startProxySecurity(options: MeshSecurityOptions, identity: ProxyIdentity, logger?: Logger): Promise<ProxySecurity> {
  const bootstrap = (): Promise<WorkloadCertificate> =>
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
  const initial = await firstCertificate(bootstrap, options.bootstrapTimeoutMs ?? 60_000, logger);
  logger?.info({ spiffeId: initial.spiffeId, serial: initial.serialNumber, notAfter: initial.notAfter }, 'workload certificate issued');
  const renew = async (): Promise<WorkloadCertificate> => {
    try {
      return await requestRenewedCertificate({ url: options.bootstrapUrl, current: store.current, ttlMs: options.ttlMs });
    } catch (error) {
      // Refused, expired, or a handshake the current root no longer passes: the token (pinned, over
      // TLS) may still work. If the operator is simply down, this fails too and the store retries.
      const detail = isCaError(error) ? { code: error.code, reason: error.reason } : { reason: (error as Error).message };
      logger?.warn(detail, 'renewal with the current certificate failed; using the join token');
      return bootstrap();
    }
  };
  const store = await CertificateStore.create({ renew, initial, logger });
  let snapshot: ProxySnapshot | undefined;
  const provider = createTlsProvider(store, { trustDomain: options.trustDomain });
  const tls: ProxyTlsProvider = {
    serverContext: () => provider.serverContext(),
    clientContext(cluster): ClientTlsOptions | undefined {
      // The serial makes the proxy's cluster definition change after a rotation, so the next snapshot
      // that is applied opens new pools with the new certificate (unknown keys are ignored by tls.connect).
      const serial = store.current.serialNumber;
      if (cluster.tls) {
        const opts = provider.clientContext(cluster);
        return opts ? { ...opts, trellisCertSerial: serial } : undefined;
      }
      const mesh = snapshot?.mesh;
      if (mesh?.enableAutoMtls === false) return undefined;
      const trustDomain = mesh?.trustDomain || options.trustDomain;
      // Auto mTLS is decided per endpoint, as Istio's transport socket match on the tlsMode label.
      const endpointTls = (endpoint: Endpoint): ClientTlsOptions | undefined => {
        const setting = autoMutualTls(endpoint, { enableAutoMtls: true, trustDomain }, clusterEndpoints(snapshot, cluster.name));
        return setting ? provider.clientContext({ ...cluster, tls: setting }) : undefined;
      };
      return { endpointTls, trellisAutoMtls: trustDomain, trellisCertSerial: serial };
    },
  };
  const filter = createInboundFilter();
  return {
    store,
    tls,
    inboundFilter: (req, ctx) => (refusesPlaintext(ctx) ? resetConnection(req.socket) : filter(req, ctx)),
    certificateInfo: () => certificateInfoOf(store.current),
    observeSnapshot(next) {
      if (next) snapshot = next;
    },
    stop: () => store.stop(),
  };
}

/**
 * Auto mTLS toward one endpoint (MeshConfig enableAutoMtls, used when the DestinationRule sets no
 * tls mode): ISTIO_MUTUAL when the endpoint has a sidecar (tlsMode `istio`), plaintext (undefined)
 * toward endpoints without one. Secure naming as Istio's: the server must present one of the
 * service's accounts, those of the cluster's sidecar endpoints (`peers`, default the endpoint
 * alone); any mesh identity when no account is known.
 */
export function autoMutualTls(
  endpoint: Endpoint,
  mesh: Pick<MeshSettings, 'enableAutoMtls' | 'trustDomain'>,
  peers: readonly Endpoint[] = [endpoint],
): UpstreamTls | undefined {
  if (mesh.enableAutoMtls === false || endpoint.tlsMode !== 'istio') return undefined;
  return { mode: 'ISTIO_MUTUAL', subjectAltNames: serviceIdentities(peers, mesh.trustDomain) };
}

function serviceIdentities(endpoints: readonly Endpoint[], trustDomain: string): string[] {
  const ids = new Set<string>();
  for (const e of endpoints) {
    if (e.tlsMode === 'istio' && e.serviceAccount && e.namespace) ids.add(spiffeId({ trustDomain, namespace: e.namespace, serviceAccount: e.serviceAccount }));
  }
  return [...ids].sort();
}

/** The cluster's endpoints in the snapshot being applied (indexed once per snapshot). */
const endpointsBySnapshot = new WeakMap<ProxySnapshot, Map<string, Endpoint[]>>();
function clusterEndpoints(snapshot: ProxySnapshot | undefined, cluster: string): Endpoint[] | undefined {
  if (!snapshot) return undefined;
  let byCluster = endpointsBySnapshot.get(snapshot);
  if (!byCluster) {
    byCluster = new Map(snapshot.endpoints.map((assignment) => [assignment.cluster, assignment.endpoints]));
    endpointsBySnapshot.set(snapshot, byCluster);
  }
  return byCluster.get(cluster);
}

/**
 * True when PeerAuthentication makes `port` STRICT: plaintext there is refused. The inbound filter
 * applies it per request; a listener may call it per connection, before reading a request.
 */
export function strictOnPort(inbound: Pick<InboundPolicy, 'mtlsMode' | 'portLevelMtls'>, port: number): boolean {
  return modeForPort(inbound.mtlsMode, inbound.portLevelMtls)(port) === 'STRICT';
}

function refusesPlaintext(ctx: InboundContext): boolean {
  return !ctx.tls && strictOnPort(ctx.snapshot.inbound, ctx.port);
}

/**
 * Istio's sidecar has no filter chain for plaintext on a STRICT port: the connection is closed
 * without any HTTP answer. A TCP reset (not a 403) is what the client sees; the proxy drops its
 * reply to the destroyed response, so no request is counted either.
 */
async function resetConnection(socket: Socket): Promise<InboundDenial> {
  await new Promise<void>((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    // A stream that is not a TCP socket (none today on the plaintext path) can only be closed.
    if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  });
  return PLAINTEXT_REFUSED;
}

/** Never written (the socket is gone); it only keeps the request from being forwarded. */
const PLAINTEXT_REFUSED: InboundDenial = { status: 403, body: 'RBAC: access denied', headers: { connection: 'close' } };

function certificateInfoOf(cert: WorkloadCertificate): CertificateInfo {
  const leafPem = splitPemCertificates(cert.certChainPem)[0];
  const leaf = leafPem ? new X509Certificate(leafPem) : undefined;
  // The mesh CA binds the certificate to the join token's cluster with one subject OU.
  const units = (leaf?.subject ?? '').split('\n').filter((line) => line.startsWith('OU=')).map((line) => line.slice(3));
  return {
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    spiffeId: cert.spiffeId,
    issuer: leaf?.issuer,
    ...(units.length === 1 ? { cluster: units[0] } : {}),
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
