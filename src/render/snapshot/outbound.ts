import type { MeshObject } from '../../mesh/object.js';
import type { SidecarSpec } from '../../mesh/api/index.js';
import type { ClusterLoadAssignment, ProxyIdentity, Route, RouteConfig, UpstreamCluster, VirtualHost } from '../../mesh/snapshot.js';
import {
  FALLBACK_SERVICE_PORT,
  byString,
  freezeShared,
  exportedTo,
  hasLabels,
  selectorLabels,
  hostMatchesPattern,
  labelsMatch,
  namespaceOf,
  objectKey,
} from './common.js';
import { cachedResource, labelsKey, type ClusterIndex, type IndexedVirtualService } from './cluster-index.js';
import type { ServiceInfo } from './services.js';
import { MESH_GATEWAY, applyWorkloadConditions, clusterName, type ClusterRef, type WorkloadContext } from './translate-route.js';
import { buildLoadAssignment, buildUpstreamCluster, selectDestinationRule } from './upstream.js';

/**
 * The Sidecar resource scoping a proxy: one in its namespace whose selector matches it, else its
 * namespace's selector-less default, else the root namespace's default (Istio's lookup order).
 */
export function selectSidecar(index: ClusterIndex, proxy: ProxyIdentity): MeshObject<SidecarSpec> | undefined {
  const own = index.sidecars.get(proxy.namespace) ?? [];
  const bySelector = own.find((s) => hasLabels(s.spec.workloadSelector) && labelsMatch(selectorLabels(s.spec.workloadSelector), proxy.labels));
  if (bySelector) return bySelector;
  const nsDefault = own.find((s) => !hasLabels(s.spec.workloadSelector));
  if (nsDefault) return nsDefault;
  return (index.sidecars.get(index.mesh.rootNamespace) ?? []).find((s) => !hasLabels(s.spec.workloadSelector));
}

type EgressFilter = (ownerNamespace: string, host: string) => boolean;

/** Sidecar `egress[].hosts` entries `ns/dnsName` (`*` any namespace, `.` the proxy's, `~` none). */
export function buildEgressFilter(sidecar: MeshObject<SidecarSpec> | undefined, proxyNamespace: string): EgressFilter {
  if (!sidecar || !sidecar.spec.egress || sidecar.spec.egress.length === 0) return () => true;
  const sidecarNamespace = namespaceOf(sidecar);
  const entries = sidecar.spec.egress.flatMap((e) => e.hosts ?? []).map((entry) => {
    const slash = entry.indexOf('/');
    const ns = slash < 0 ? '*' : entry.slice(0, slash);
    const host = slash < 0 ? entry : entry.slice(slash + 1);
    return { ns: ns === '.' ? sidecarNamespace || proxyNamespace : ns, host };
  });
  return (ownerNamespace, host) =>
    entries.some((e) => e.ns !== '~' && (e.ns === '*' || e.ns === ownerNamespace) && hostMatchesPattern(host, e.host));
}

/** The hostnames a proxy in `proxyNamespace` can use for a service: short name only from its own namespace. */
export function serviceDomains(host: string, service: ServiceInfo | undefined, proxyNamespace: string): string[] {
  const names: string[] = [];
  if (service?.origin === 'kubernetes' && service.shortName) {
    const { shortName, namespace } = service;
    if (namespace === proxyNamespace) names.push(shortName);
    names.push(`${shortName}.${namespace}`, `${shortName}.${namespace}.svc`, host);
  } else {
    names.push(host);
  }
  if (host.includes('*')) return names;
  const ports = service?.ports ?? [];
  return names.flatMap((n) => [n, ...ports.map((p) => `${n}:${p}`)]);
}

/** Ports a service is routed on; a host known only from config gets the fallback port. */
export function routablePorts(service: ServiceInfo): number[] {
  return service.ports.length > 0 ? service.ports : [FALLBACK_SERVICE_PORT];
}

/** Routes for a service no VirtualService names: everything to its cluster (one route per port when it has several). */
function defaultRoutes(index: ClusterIndex, service: ServiceInfo): Route[] {
  const ports = routablePorts(service);
  return cachedResource(index.cache, 'defaultRoutes', `${index.meshHash}|${service.host}|${ports.join(',')}`, () =>
    freezeShared(
      ports.map((port) => freezeShared({
        name: 'default',
        match: ports.length > 1 ? [{ port }] : [],
        action: { kind: 'route' as const, destinations: [{ cluster: clusterName(port, undefined, service.host), weight: 100 }] },
        retry: index.mesh.defaultRetry,
        mirrors: [],
      }) as Route),
    ),
  );
}

/**
 * Concatenates the rules of the VirtualServices for one host (namespace/name order), evaluating
 * match-block workload selectors for this proxy, and stops after a catch-all as istiod does.
 */
export function buildVirtualServiceRoutes(
  virtualServices: readonly IndexedVirtualService[],
  workload: WorkloadContext,
  referenced: Map<string, ClusterRef>,
): Route[] {
  const routes: Route[] = [];
  for (const vs of virtualServices) {
    for (const rule of vs.rules) {
      const applied = applyWorkloadConditions(rule, vs.gateways, workload);
      if (!applied) continue;
      routes.push(applied.route);
      for (const ref of rule.clusters) referenced.set(ref.name, ref);
      if (applied.catchAll) return routes;
    }
  }
  return routes;
}

export interface OutboundConfig {
  routeConfig: RouteConfig;
  clusters: UpstreamCluster[];
  endpoints: ClusterLoadAssignment[];
  outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
}

/** Services a proxy sees: exported to its namespace and allowed by its Sidecar's egress. */
export function visibleServices(index: ClusterIndex, proxyNamespace: string, egress: EgressFilter): ServiceInfo[] {
  return index.serviceList.filter((s) => exportedTo(s.exportTo ?? index.exportDefaults.service, s.namespace, proxyNamespace) && egress(s.namespace, s.host));
}

/** Clusters and endpoints for the visible services (every port, every subset their DestinationRule defines) plus every referenced cluster. */
export function buildClustersAndEndpoints(
  index: ClusterIndex,
  proxyNamespace: string,
  proxyLabels: Record<string, string>,
  services: readonly ServiceInfo[],
  referenced: Map<string, ClusterRef>,
): { clusters: UpstreamCluster[]; endpoints: ClusterLoadAssignment[] } {
  const refs = new Map(referenced);
  for (const service of services) {
    const dr = selectDestinationRule(index, service.host, proxyNamespace, proxyLabels);
    for (const port of routablePorts(service)) {
      const base = clusterName(port, undefined, service.host);
      if (!refs.has(base)) refs.set(base, { name: base, host: service.host, port });
      for (const subset of dr?.spec.subsets ?? []) {
        const name = clusterName(port, subset.name, service.host);
        if (!refs.has(name)) refs.set(name, { name, host: service.host, port, subset: subset.name });
      }
    }
  }
  const names = [...refs.keys()].sort(byString);
  const chosen = names.map((name) => selectDestinationRule(index, refs.get(name)!.host, proxyNamespace, proxyLabels));
  // Namespaces that see the same clusters under the same DestinationRules share one list (and its
  // memoised canonical JSON and version-hash prefix): what makes a mesh without Sidecars affordable.
  const signature = `lists|${names.join(' ')}|${chosen.map((dr) => dr?.key ?? '').join(' ')}`;
  const shared = index.memo.get(signature) as { clusters: UpstreamCluster[]; endpoints: ClusterLoadAssignment[] } | undefined;
  if (shared) return shared;
  const clusters: UpstreamCluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  names.forEach((name, i) => {
    const ref = refs.get(name)!;
    clusters.push(buildUpstreamCluster(index, ref, chosen[i]));
    endpoints.push(buildLoadAssignment(index, ref, chosen[i]));
  });
  const lists = { clusters: freezeShared(clusters), endpoints: freezeShared(endpoints) };
  index.memo.set(signature, lists);
  return lists;
}

/**
 * One virtual host, shared by every proxy that would render it identically: the same host, the
 * same VirtualServices, the same short-name visibility, and (only when a rule selects workloads)
 * the same namespace and labels.
 */
function sharedVirtualHost(
  index: ClusterIndex,
  host: string,
  rules: IndexedVirtualService[] | undefined,
  proxy: ProxyIdentity,
  workload: WorkloadContext,
  referenced: Map<string, ClusterRef>,
): VirtualHost {
  const service = index.services.get(host);
  const sameNamespace = service?.shortName !== undefined && service.namespace === proxy.namespace;
  const workloadKey = rules?.some((vs) => vs.dependsOnWorkload) ? `${proxy.namespace}|${labelsKey(proxy.labels)}` : '';
  const key = `vh|${host}|${sameNamespace}|${rules ? rules.map((vs) => vs.key).join(',') : ''}|${workloadKey}`;
  let entry = index.memo.get(key) as { vh: VirtualHost; refs: ClusterRef[] } | undefined;
  if (!entry) {
    const own = new Map<string, ClusterRef>();
    const routes = rules ? buildVirtualServiceRoutes(rules, workload, own) : service ? defaultRoutes(index, service) : [];
    entry = { vh: freezeShared({ name: host, domains: serviceDomains(host, service, proxy.namespace), routes }), refs: [...own.values()] };
    index.memo.set(key, entry);
  }
  for (const ref of entry.refs) referenced.set(ref.name, ref);
  return entry.vh;
}

/**
 * A sidecar's outbound view: route config `outbound` with one virtual host per visible host, and
 * the clusters and endpoints its routes and services need. Memoised per (namespace, Sidecar,
 * labels when some rule selects by labels), so proxies of one kind share the same objects.
 */
export function buildSidecarOutbound(index: ClusterIndex, proxy: ProxyIdentity): OutboundConfig {
  const sidecar = selectSidecar(index, proxy);
  const byLabels = index.anyWorkloadDependentRule || index.selectorDestinationRuleNamespaces.has(proxy.namespace);
  const memoKey = `outbound|${proxy.namespace}|${sidecar ? objectKey(sidecar) : ''}|${byLabels ? labelsKey(proxy.labels) : ''}`;
  const memoised = index.memo.get(memoKey) as OutboundConfig | undefined;
  if (memoised) return memoised;

  const egress = buildEgressFilter(sidecar, proxy.namespace);
  const hostRules = new Map<string, IndexedVirtualService[]>();
  for (const vs of index.meshVirtualServices) {
    if (!exportedTo(vs.exportTo ?? index.exportDefaults.virtualService, vs.namespace, proxy.namespace)) continue;
    for (const host of vs.hosts) {
      if (!egress(vs.namespace, host)) continue;
      const list = hostRules.get(host);
      if (list) list.push(vs);
      else hostRules.set(host, [vs]);
    }
  }
  const services = visibleServices(index, proxy.namespace, egress);
  const hosts = new Set<string>([...hostRules.keys(), ...services.map((s) => s.host)]);
  const workload: WorkloadContext = { labels: proxy.labels, namespace: proxy.namespace, gateways: new Set([MESH_GATEWAY]) };
  const referenced = new Map<string, ClusterRef>();
  const virtualHosts: VirtualHost[] = [];
  for (const host of [...hosts].sort(byString)) {
    virtualHosts.push(sharedVirtualHost(index, host, hostRules.get(host), proxy, workload, referenced));
  }
  // Without a Sidecar, namespace-scoped exports, foreign DestinationRules or workload selectors,
  // every namespace gets the same clusters: build them once per index.
  const uniform =
    !sidecar &&
    index.namespaceIndependentVisibility &&
    !index.anyWorkloadDependentRule &&
    !index.foreignDestinationRuleNamespaces.has(proxy.namespace);
  let lists = uniform ? (index.memo.get('lists|uniform') as ReturnType<typeof buildClustersAndEndpoints> | undefined) : undefined;
  if (!lists) {
    lists = buildClustersAndEndpoints(index, proxy.namespace, proxy.labels, services, referenced);
    if (uniform) index.memo.set('lists|uniform', lists);
  }
  const { clusters, endpoints } = lists;
  const result: OutboundConfig = {
    routeConfig: freezeShared({ name: 'outbound', virtualHosts: freezeShared(virtualHosts) }),
    clusters,
    endpoints,
    outboundTrafficPolicy: sidecar?.spec.outboundTrafficPolicy?.mode,
  };
  index.memo.set(memoKey, result);
  return result;
}
