import type { Logger } from 'pino';
import { startDiscoveryClient, type ClientTlsOptions, type DiscoveryClient } from '../discovery/client.js';
import type { HeartbeatStat } from '../discovery/protocol.js';
import type { ProxyIdentity, ProxySnapshot } from '../mesh/snapshot.js';
import { startProxy, type Proxy, type ProxyOptions } from './server.js';
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
    tls?: ClientTlsOptions | (() => ClientTlsOptions);
    heartbeatMs?: number;
  };
  logger?: Logger;
}

export interface MeshAgent {
  proxy: Proxy;
  client: DiscoveryClient;
  stop(opts?: { drainMs?: number }): Promise<void>;
}

/**
 * A proxy wired to the control plane (what pilot-agent does for Envoy): it serves its last good
 * snapshot from the state dir at once, then applies what discovery pushes (ACK, or NACK with the
 * reason when the proxy refuses it) and reports its per-mesh-version statistics in heartbeats.
 */
export async function startMeshAgent(opts: MeshAgentOptions): Promise<MeshAgent> {
  const proxy = await startProxy({ ...opts.proxy, logger: opts.proxy.logger ?? opts.logger });
  const client = startDiscoveryClient({
    url: opts.discovery.url,
    identity: opts.discovery.identity,
    endpoint: opts.discovery.endpoint,
    tls: opts.discovery.tls,
    heartbeatMs: opts.discovery.heartbeatMs,
    initialSnapshot: proxy.currentSnapshot() ?? null,
    meshVersion: proxy.currentSnapshot()?.meshVersion,
    apply: (snapshot: ProxySnapshot) => {
      const result = proxy.applySnapshot(snapshot, 'discovery');
      return result.ok ? { ok: true } : { ok: false, error: result.error };
    },
    stats: () => proxy.versionStats().map(toHeartbeatStat),
    logger: opts.logger,
  });
  return {
    proxy,
    client,
    async stop(stopOpts) {
      await client.stop();
      await proxy.close(stopOpts);
    },
  };
}
