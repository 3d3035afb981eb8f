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

// Endpoint lists keep their identity until the registry changes: index each once, not per proxy.
const indexCache = new WeakMap<WorkloadEndpoint[], Map<string, WorkloadEndpoint[]>>();
function endpointsByNamespace(endpoints: WorkloadEndpoint[]): Map<string, WorkloadEndpoint[]> {
  let index = indexCache.get(endpoints);
  if (!index) {
    index = new Map();
    for (const ep of endpoints) {
      const list = index.get(ep.namespace) ?? [];
      list.push(ep);
      index.set(ep.namespace, list);
    }
    indexCache.set(endpoints, index);
  }
  return index;
}

interface NamespaceResources {
  clusters: UpstreamCluster[];
  endpoints: ClusterLoadAssignment[];
  routeConfigs: ProxySnapshot['routeConfigs'];
}

function buildNamespace(config: SyntheticConfig, ns: string, endpoints: WorkloadEndpoint[]): NamespaceResources {
  const names = new Set(config.services[ns] ?? []);
  for (const ep of endpoints) names.add(ep.service);
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
        .filter((ep) => ep.service === service)
        .map((ep) => ({ address: ep.address, port: ep.port, labels: ep.labels, tlsMode: ep.tlsMode, serviceAccount: ep.serviceAccount, weight: 1, workload: ep.workload, namespace: ep.namespace })),
    });
    const timeout = config.timeouts[`${ns}/${service}`];
    vhosts.push({
      name: `${fqdn}:80`,
      domains: [service, `${service}.${ns}`, fqdn],
      routes: [{ name: 'default', match: [], action: { kind: 'route', destinations: [{ cluster: name, weight: 100 }] }, ...(timeout !== undefined ? { timeoutMs: timeout } : {}), retry, mirrors: [] }],
    });
  }
  return { clusters, endpoints: assignments, routeConfigs: [{ name: 'outbound', virtualHosts: vhosts }] };
}

function namespaceKey(config: SyntheticConfig, ns: string): string {
  const timeouts = Object.entries(config.timeouts).filter(([k]) => k.startsWith(`${ns}/`));
  return JSON.stringify([ns, config.meshVersion, config.services[ns] ?? [], timeouts]);
}

/**
 * With `share` (default) proxies of one namespace share resource objects until their inputs change,
 * as a caching renderer (istiod's) does; without it every call builds fresh objects, the worst
 * case for discovery's hashing.
 */
export function syntheticRender(config: SyntheticConfig, options: { share?: boolean } = {}) {
  const share = options.share ?? true;
  const cache = new WeakMap<WorkloadEndpoint[], Map<string, NamespaceResources>>();
  const mesh = { trustDomain: 'cluster.local', rootNamespace: 'istio-system', enableAutoMtls: true, outboundTrafficPolicy: 'ALLOW_ANY' as const, connectTimeoutMs: 10000, defaultRetry: retry, extensionProviders: [] };
  const inbound = { mtlsMode: 'PERMISSIVE' as const, portLevelMtls: {}, authorization: [], jwtRules: [] };
  const telemetry = { accessLog: false, accessLogEncoding: 'TEXT' as const, metrics: true, tracingSamplingPercent: 1 };
  return (proxy: ProxyIdentity, allEndpoints: WorkloadEndpoint[]): ProxySnapshot => {
    const ns = proxy.namespace;
    const endpoints = endpointsByNamespace(allEndpoints).get(ns) ?? [];
    let resources: NamespaceResources;
    if (share) {
      let byNs = cache.get(allEndpoints);
      if (!byNs) cache.set(allEndpoints, (byNs = new Map()));
      const key = namespaceKey(config, ns);
      let cached = byNs.get(key);
      if (!cached) byNs.set(key, (cached = buildNamespace(config, ns, endpoints)));
      resources = cached;
    } else {
      resources = buildNamespace(config, ns, endpoints);
    }
    const body: Omit<ProxySnapshot, 'version'> = {
      format: SNAPSHOT_FORMAT,
      meshVersion: config.meshVersion,
      proxy,
      mesh: share ? mesh : structuredClone(mesh),
      routeConfigs: resources.routeConfigs,
      clusters: resources.clusters,
      endpoints: resources.endpoints,
      listeners: [],
      inbound: share ? inbound : structuredClone(inbound),
      telemetry: share ? telemetry : structuredClone(telemetry),
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
