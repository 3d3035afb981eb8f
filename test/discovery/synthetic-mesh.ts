import { SNAPSHOT_FORMAT } from '../../src/mesh/snapshot.js';
import type { ProxyIdentity, ProxySnapshot, UpstreamCluster, ClusterLoadAssignment, VirtualHost } from '../../src/mesh/snapshot.js';
import type { WorkloadEndpoint } from '../../src/render/types.js';
import { snapshotContentHash } from '../../src/discovery/resources.js';

/**
 * A small stand-in for src/render: every proxy sees the services of its own namespace (as with a
 * Sidecar egress scope of `./*`), one cluster + endpoints per service and one outbound route
 * config. `config` is mutable: tests and the bench change it, then call configChanged().
 */
export interface SyntheticConfig {
  meshVersion: string;
  /** namespace → service names (besides those with registered endpoints). */
  services: Record<string, string[]>;
  /** `<namespace>/<service>` → route timeout; changing one changes only that namespace's snapshots. */
  timeouts: Record<string, number>;
}

export function syntheticConfig(namespaces: string[], servicesPerNamespace: number): SyntheticConfig {
  const services: Record<string, string[]> = {};
  for (const ns of namespaces) services[ns] = Array.from({ length: servicesPerNamespace }, (_, i) => `svc-${i}`);
  return { meshVersion: '1.0.0', services, timeouts: {} };
}

const retry = { attempts: 2, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'], retriableStatusCodes: [503], backoffBaseMs: 25 };

export function syntheticRender(config: SyntheticConfig) {
  return (proxy: ProxyIdentity, endpoints: WorkloadEndpoint[]): ProxySnapshot => {
    const ns = proxy.namespace;
    const names = new Set(config.services[ns] ?? []);
    for (const ep of endpoints) if (ep.namespace === ns) names.add(ep.service);
    const sorted = [...names].sort();
    const clusters: UpstreamCluster[] = [];
    const assignments: ClusterLoadAssignment[] = [];
    const vhosts: VirtualHost[] = [];
    for (const service of sorted) {
      const fqdn = `${service}.${ns}.svc.cluster.local`;
      const name = `outbound|80||${fqdn}`;
      clusters.push({
        name,
        service: fqdn,
        port: 80,
        lb: { simple: 'LEAST_REQUEST' },
        connectionPool: { maxConnections: 1024, connectTimeoutMs: 10000, http1MaxPendingRequests: 1024, http2MaxRequests: 1024, maxRequestsPerConnection: 0, maxRetries: 1024, idleTimeoutMs: 3600000 },
      });
      assignments.push({
        cluster: name,
        endpoints: endpoints
          .filter((ep) => ep.namespace === ns && ep.service === service)
          .map((ep) => ({ address: ep.address, port: ep.port, labels: ep.labels, tlsMode: ep.tlsMode, serviceAccount: ep.serviceAccount, weight: 1, workload: ep.workload, namespace: ep.namespace })),
      });
      const timeout = config.timeouts[`${ns}/${service}`];
      vhosts.push({
        name: `${fqdn}:80`,
        domains: [service, `${service}.${ns}`, fqdn],
        routes: [{ name: 'default', match: [], action: { kind: 'route', destinations: [{ cluster: name, weight: 100 }] }, ...(timeout !== undefined ? { timeoutMs: timeout } : {}), retry, mirrors: [] }],
      });
    }
    const body: Omit<ProxySnapshot, 'version'> = {
      format: SNAPSHOT_FORMAT,
      meshVersion: config.meshVersion,
      proxy,
      mesh: { trustDomain: 'cluster.local', rootNamespace: 'istio-system', enableAutoMtls: true, outboundTrafficPolicy: 'ALLOW_ANY', connectTimeoutMs: 10000, defaultRetry: retry, extensionProviders: [] },
      routeConfigs: [{ name: 'outbound', virtualHosts: vhosts }],
      clusters,
      endpoints: assignments,
      listeners: [],
      inbound: { mtlsMode: 'PERMISSIVE', portLevelMtls: {}, authorization: [], jwtRules: [] },
      telemetry: { accessLog: false, accessLogEncoding: 'TEXT', metrics: true, tracingSamplingPercent: 1 },
    };
    return { ...body, version: snapshotContentHash(body) } as ProxySnapshot;
  };
}

export function identity(cluster: string, namespace: string, workload: string, instance: string, service?: string): ProxyIdentity {
  return {
    id: `${cluster}/${namespace}/${workload}/${instance}`,
    cluster,
    namespace,
    workload,
    labels: { app: workload, version: 'v1' },
    service,
    serviceAccount: workload,
    mode: 'sidecar',
  };
}
