import type { Logger } from 'pino';
import { startDiscoveryClient, type ClientTlsOptions, type DiscoveryClient } from '../discovery/client.js';
import type { HeartbeatStat } from '../discovery/protocol.js';
import type { ProxyIdentity, ProxySnapshot } from '../mesh/snapshot.js';
import { startProxySecurity, type MeshSecurityOptions, type ProxySecurity } from './mesh-security.js';
import { startProxy, type Proxy, type ProxyOptions } from './server.js';
import { validateProxySnapshot } from './snapshot-validate.js';
import { loadPersistedSnapshot } from './state-store.js';
import type { VersionStats } from './telemetry/index.js';

/**
 * Telemetry keeps Prometheus-style cumulative bucket counts; heartbeats carry per-bucket counts
 * (see HeartbeatStat). This is the one conversion between the two.
 */
export function toHeartbeatStat(s: VersionStats): HeartbeatStat {
  const perBucket = s.latencyCounts.map((c, i) => c - (i === 0 ? 0 : s.latencyCounts[i - 1]));
  return { meshVersion: s.meshVersion, requests: s.requests, errors5xx: s.errors5xx, latencyBucketsMs: s.latencyBucketsMs, latencyCounts: perBucket, sumMs: s.sumMs };
}

export interface MeshAgentOptions {
  proxy: ProxyOptions;
  discovery: {
    url: string;
    identity: ProxyIdentity;
    /** Registers this workload in the service registry (sidecars: the inbound listener's address). */
    endpoint?: { address: string; port: number; labels?: Record<string, string> };
    /** Explicit discovery TLS; default with `security` and an https URL: mTLS with the workload certificate. */
    tls?: ClientTlsOptions | (() => ClientTlsOptions);
    heartbeatMs?: number;
  };
  /**
   * Workload identity and mTLS: the first certificate comes from the operator's bootstrap endpoint
   * with the cluster's join token; the proxy then serves inbound mTLS (PeerAuthentication), auto
   * mTLS / ISTIO_MUTUAL outbound, and authorization / JWT on inbound requests.
   */
  security?: MeshSecurityOptions;
  logger?: Logger;
}

export interface MeshAgent {
  proxy: Proxy;
  client: DiscoveryClient;
  /** Present when `security` was given. */
  security?: ProxySecurity;
  stop(opts?: { drainMs?: number }): Promise<void>;
}

/**
 * After bootstrap, an https discovery stream is mutual TLS with the workload certificate: read at
 * every (re)connect, so a reconnect after a rotation presents the new one. The operator must
 * present a certificate from the same mesh root (the one the bootstrap response delivered).
 */
function workloadDiscoveryTls(url: string, security: ProxySecurity): (() => ClientTlsOptions) | undefined {
  if (!url.startsWith('https:')) return undefined;
  return () => {
    const cert = security.store.current;
    return { ca: cert.rootCertPem, cert: cert.certChainPem, key: cert.privateKeyPem };
  };
}

/**
 * A proxy wired to the control plane (what pilot-agent does for Envoy): it serves its last good
 * snapshot from the state dir at once, then applies what discovery pushes (ACK, or NACK with the
 * reason when the proxy refuses it) and reports its per-mesh-version statistics in heartbeats.
 */
export async function startMeshAgent(opts: MeshAgentOptions): Promise<MeshAgent> {
  const security = opts.security ? await startProxySecurity(opts.security, opts.discovery.identity, opts.logger) : undefined;
  if (security && opts.proxy.stateDir) {
    const persisted = loadPersistedSnapshot(opts.proxy.stateDir);
    const checked = persisted.found ? validateProxySnapshot(persisted.value) : undefined;
    if (checked?.ok) security.observeSnapshot(checked.snapshot);
  }
  let proxy: Proxy;
  try {
    proxy = await startProxy({
      ...opts.proxy,
      logger: opts.proxy.logger ?? opts.logger,
      ...(security ? { tls: opts.proxy.tls ?? security.tls, inboundFilter: opts.proxy.inboundFilter ?? security.inboundFilter } : {}),
    });
  } catch (err) {
    security?.stop();
    throw err;
  }
  if (security) {
    // Upstream pools hold the TLS options they were built with: rebuild them after a rotation.
    security.store.on('rotated', () => proxy.reloadTls());
  }
  const client = startDiscoveryClient({
    url: opts.discovery.url,
    identity: opts.discovery.identity,
    endpoint: opts.discovery.endpoint,
    tls: opts.discovery.tls ?? (security ? workloadDiscoveryTls(opts.discovery.url, security) : undefined),
    heartbeatMs: opts.discovery.heartbeatMs,
    initialSnapshot: proxy.currentSnapshot() ?? null,
    meshVersion: proxy.currentSnapshot()?.meshVersion,
    apply: (snapshot: ProxySnapshot) => {
      const previous = proxy.currentSnapshot();
      security?.observeSnapshot(snapshot);
      const result = proxy.applySnapshot(snapshot, 'discovery');
      if (!result.ok) security?.observeSnapshot(previous);
      return result.ok ? { ok: true } : { ok: false, error: result.error };
    },
    stats: () => proxy.versionStats().map(toHeartbeatStat),
    certificate: security ? () => security.certificateInfo() : undefined,
    logger: opts.logger,
  });
  return {
    proxy,
    client,
    security,
    async stop(stopOpts) {
      security?.stop();
      await client.stop();
      await proxy.close(stopOpts);
    },
  };
}
