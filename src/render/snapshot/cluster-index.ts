import type { MeshObject } from '../../mesh/object.js';
import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  GatewaySpec,
  MeshConfig,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  ServiceEntrySpec,
  SidecarSpec,
  TelemetrySpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
} from '../../mesh/api/index.js';
import type { ClusterLoadAssignment, MeshSettings, Route, UpstreamCluster } from '../../mesh/snapshot.js';
import type { ClusterRender, WorkloadEndpoint } from '../types.js';
import { canonicalJson, contentHash, hashText } from '../hash.js';
import { DOMAIN_SUFFIX, FALLBACK_SERVICE_PORT, byString, deepFreeze, freezeShared, namespaceOf, objectKey, resolveHost } from './common.js';
import { expandDelegates } from './delegate.js';
import { buildMeshSettings } from './mesh-settings.js';
import { addConfigHost, addKubernetesServices, addServiceEntries, buildEndpointServices, type ServiceInfo } from './services.js';
import {
  MESH_GATEWAY,
  clusterName,
  dependsOnWorkload,
  normaliseGatewayName,
  translateHttpRoute,
  type PreparedRule,
} from './translate-route.js';

/** A VirtualService translated once: its rules are shared by every proxy it applies to. */
export interface IndexedVirtualService {
  key: string;
  namespace: string;
  name: string;
  /** Hosts resolved in the VirtualService's namespace. */
  hosts: string[];
  /** Normalised bindings: `mesh` and/or `<ns>/<gateway>`. Omitted in the resource ⇒ `mesh`. */
  gateways: string[];
  exportTo?: string[];
  rules: PreparedRule[];
  dependsOnWorkload: boolean;
}

export interface IndexedDestinationRule {
  key: string;
  namespace: string;
  host: string;
  exportTo?: string[];
  /** `workloadSelector.matchLabels`: the rule applies only to these workloads of its namespace. */
  workloadSelector?: Record<string, string>;
  spec: DestinationRuleSpec;
  /** Content hash of the resource: part of every cache key derived from it. */
  hash: string;
}

/**
 * Caches that survive from one index to the next (pass the previous index to buildClusterIndex).
 * Entries are keyed by content (object hashes), so a one-object change re-translates only that
 * object; every other translated resource keeps its identity and its memoised canonical JSON.
 */
export interface RenderCache {
  /** Canonical JSON of shared, frozen rendered objects, by identity. */
  json: WeakMap<object, string>;
  objectHashes: WeakMap<object, string>;
  virtualServices: Map<string, { deps: Array<[string, number | undefined, number]>; value: IndexedVirtualService }>;
  clusters: Map<string, UpstreamCluster>;
  assignments: Map<string, ClusterLoadAssignment>;
  defaultRoutes: Map<string, Route[]>;
  /** The previous index's resource maps, consulted on a miss (one generation back, so memory stays bounded). */
  prior?: Pick<RenderCache, 'clusters' | 'assignments' | 'defaultRoutes'>;
  endpointServices?: { endpoints: readonly WorkloadEndpoint[]; trustDomain: string; services: Map<string, ServiceInfo>; hashes: Map<string, string> };
}

export interface ClusterIndex {
  cluster: string;
  meshVersion: string;
  meshConfig: MeshConfig;
  mesh: MeshSettings;
  /** Hash of everything mesh-wide that translated resources depend on. */
  meshHash: string;
  services: Map<string, ServiceInfo>;
  /** meshConfig.default{Service,VirtualService,DestinationRule}ExportTo: the exportTo of resources that set none. */
  exportDefaults: { service?: string[]; virtualService?: string[]; destinationRule?: string[] };
  /** Sorted by host. */
  serviceList: ServiceInfo[];
  /** Per host: content hash of its endpoints (part of the endpoint-assignment cache key). */
  endpointHashes: Map<string, string>;
  virtualServices: IndexedVirtualService[];
  meshVirtualServices: IndexedVirtualService[];
  gatewayVirtualServices: Map<string, IndexedVirtualService[]>;
  anyWorkloadDependentRule: boolean;
  /**
   * True when nothing restricts visibility by namespace (no exportTo other than `*`, no mesh export
   * defaults): then every namespace without a Sidecar sees the same services and VirtualServices.
   */
  namespaceIndependentVisibility: boolean;
  /** Namespaces holding a DestinationRule for a host outside them (their proxies may pick another rule). */
  foreignDestinationRuleNamespaces: Set<string>;
  /** Namespaces holding a DestinationRule with a workloadSelector (their proxies' rules depend on labels). */
  selectorDestinationRuleNamespaces: Set<string>;
  destinationRules: Map<string, IndexedDestinationRule[]>;
  wildcardDestinationRules: IndexedDestinationRule[];
  gateways: MeshObject<GatewaySpec>[];
  sidecars: Map<string, MeshObject<SidecarSpec>[]>;
  peerAuthentications: Map<string, MeshObject<PeerAuthenticationSpec>[]>;
  authorizationPolicies: Map<string, MeshObject<AuthorizationPolicySpec>[]>;
  requestAuthentications: Map<string, MeshObject<RequestAuthenticationSpec>[]>;
  telemetries: Map<string, MeshObject<TelemetrySpec>[]>;
  cache: RenderCache;
  /** Per-index memo of per-proxy-class results (route configs, cluster lists); dropped with the index. */
  memo: Map<string, unknown>;
}

function newCache(previous?: RenderCache): RenderCache {
  return {
    json: previous?.json ?? new WeakMap(),
    objectHashes: previous?.objectHashes ?? new WeakMap(),
    virtualServices: new Map(),
    clusters: new Map(),
    assignments: new Map(),
    defaultRoutes: new Map(),
    prior: previous ? { clusters: previous.clusters, assignments: previous.assignments, defaultRoutes: previous.defaultRoutes } : undefined,
    endpointServices: previous?.endpointServices,
  };
}

/** Looks a rendered resource up in this index's cache, then the previous one's; builds it on a miss. */
export function cachedResource<T>(cache: RenderCache, map: 'clusters' | 'assignments' | 'defaultRoutes', key: string, build: () => T): T {
  const current = cache[map] as Map<string, unknown>;
  let value = current.get(key) as T | undefined;
  if (value === undefined) {
    value = (cache.prior?.[map] as Map<string, unknown> | undefined)?.get(key) as T | undefined;
    if (value === undefined) value = build();
    current.set(key, value);
  }
  return value;
}

/**
 * Cache key of a config object's content, memoised by identity (objects from one load are never
 * mutated). Plain JSON text, not canonical: a key-order difference only costs a re-translation.
 */
export function objectHash(cache: RenderCache, obj: MeshObject): string {
  let hash = cache.objectHashes.get(obj);
  if (hash === undefined) {
    hash = hashText(JSON.stringify([obj.kind, namespaceOf(obj), obj.metadata.name, obj.metadata.annotations ?? null, obj.spec]));
    cache.objectHashes.set(obj, hash);
  }
  return hash;
}

/** The cluster's objects grouped by kind, each group in namespace/name order (one pass, keys computed once). */
function groupByKind(objects: readonly MeshObject[]): Map<string, MeshObject[]> {
  const keyed = new Map<string, Array<{ key: string; obj: MeshObject }>>();
  for (const obj of objects) {
    const list = keyed.get(obj.kind);
    const entry = { key: objectKey(obj), obj };
    if (list) list.push(entry);
    else keyed.set(obj.kind, [entry]);
  }
  const out = new Map<string, MeshObject[]>();
  // a repository cannot hold two objects with one kind/namespace/name (kustomize refuses it), but if
  // a caller passes duplicates the output must still not depend on their order
  const tieBreak = (a: MeshObject, b: MeshObject): number => byString(JSON.stringify([a.apiVersion, a.spec]), JSON.stringify([b.apiVersion, b.spec]));
  for (const [kind, list] of keyed) out.set(kind, list.sort((a, b) => byString(a.key, b.key) || tieBreak(a.obj, b.obj)).map((e) => e.obj));
  return out;
}

function groupByNamespace<S>(objects: MeshObject<S>[]): Map<string, MeshObject<S>[]> {
  const out = new Map<string, MeshObject<S>[]>();
  for (const o of objects) {
    const ns = namespaceOf(o);
    const list = out.get(ns);
    if (list) list.push(o);
    else out.set(ns, [o]);
  }
  return out;
}

function resolvePortFor(services: Map<string, ServiceInfo>) {
  return (host: string, matchPort: number | undefined): number => {
    const ports = services.get(host)?.ports ?? [];
    if (ports.length === 1) return ports[0];
    if (matchPort !== undefined && (ports.length === 0 || ports.includes(matchPort))) return matchPort;
    return ports[0] ?? FALLBACK_SERVICE_PORT;
  };
}

function prepareVirtualService(
  vs: MeshObject<VirtualServiceSpec>,
  index: Pick<ClusterIndex, 'mesh' | 'meshHash' | 'services'>,
  previous: RenderCache | undefined,
  cache: RenderCache,
): IndexedVirtualService {
  const key = `${objectHash(cache, vs)}|${index.meshHash}`;
  const resolvePort = resolvePortFor(index.services);
  const hit = cache.virtualServices.get(key) ?? previous?.virtualServices.get(key);
  if (hit && hit.deps.every(([host, matchPort, port]) => resolvePort(host, matchPort) === port)) {
    cache.virtualServices.set(key, hit);
    return hit.value;
  }
  const namespace = namespaceOf(vs);
  const deps: Array<[string, number | undefined, number]> = [];
  const ctx = {
    namespace,
    defaultRetry: index.mesh.defaultRetry,
    resolvePort(host: string, matchPort: number | undefined): number {
      const port = resolvePort(host, matchPort);
      deps.push([host, matchPort, port]);
      return port;
    },
  };
  const rules: PreparedRule[] = [];
  (vs.spec.http ?? []).forEach((rule, i) => {
    const prepared = translateHttpRoute(rule, i, vs.metadata.name, ctx);
    if (prepared) rules.push(freezeShared({ ...prepared, route: freezeShared(prepared.route) }));
  });
  const gateways = vs.spec.gateways && vs.spec.gateways.length > 0 ? vs.spec.gateways : [MESH_GATEWAY];
  const value: IndexedVirtualService = {
    key: objectKey(vs),
    namespace,
    name: vs.metadata.name,
    hosts: [...new Set((vs.spec.hosts ?? []).map((h) => resolveHost(h, namespace)))],
    gateways: [...new Set(gateways.map((g) => normaliseGatewayName(g, namespace)))],
    exportTo: vs.spec.exportTo,
    rules,
    dependsOnWorkload: rules.some(dependsOnWorkload),
  };
  cache.virtualServices.set(key, { deps, value });
  return value;
}

function endpointServicesFor(
  endpoints: readonly WorkloadEndpoint[],
  trustDomain: string,
  cache: RenderCache,
): { services: Map<string, ServiceInfo>; hashes: Map<string, string> } {
  const cached = cache.endpointServices;
  if (cached && cached.endpoints === endpoints && cached.trustDomain === trustDomain) return cached;
  const services = buildEndpointServices(endpoints, trustDomain);
  const hashes = new Map<string, string>();
  for (const [host, service] of services) hashes.set(host, hashText(JSON.stringify(service.endpoints)));
  cache.endpointServices = { endpoints, trustDomain, services, hashes };
  return cache.endpointServices;
}

/**
 * Indexes one cluster's configuration for fast per-proxy rendering: VirtualServices translated
 * and grouped by binding, DestinationRules by host, policies by namespace, services from the
 * endpoint registry and ServiceEntries. Pure: the result depends only on the arguments; `previous`
 * only lets unchanged objects keep their translations (the output is the same without it).
 */
export function buildClusterIndex(cluster: ClusterRender, endpoints: readonly WorkloadEndpoint[], previous?: ClusterIndex): ClusterIndex {
  const cache = newCache(previous?.cache);
  const meshConfig = cluster.meshConfig ?? {};
  const mesh = deepFreeze(buildMeshSettings(meshConfig));
  const meshHash = contentHash(mesh);
  const kinds = groupByKind(cluster.objects);
  const byKind = <S>(kind: string): MeshObject<S>[] => (kinds.get(kind) ?? []) as MeshObject<S>[];

  const registry = endpointServicesFor(endpoints, mesh.trustDomain, cache);
  const services = new Map(registry.services);
  const endpointHashes = new Map(registry.hashes);
  const kubernetesServices = byKind<never>('Service').filter((o) => o.apiVersion === 'v1');
  addKubernetesServices(services, kubernetesServices);
  for (const svc of kubernetesServices) {
    const host = `${svc.metadata.name}.${namespaceOf(svc)}.svc.${DOMAIN_SUFFIX}`;
    endpointHashes.set(host, hashText(JSON.stringify(services.get(host)!.endpoints)));
  }
  const serviceEntries = byKind<ServiceEntrySpec>('ServiceEntry');
  addServiceEntries(services, serviceEntries, mesh.trustDomain, { workloadEntries: byKind<WorkloadEntrySpec>('WorkloadEntry'), endpoints });
  for (const se of serviceEntries) {
    for (const host of se.spec.hosts ?? []) {
      const resolved = resolveHost(host, namespaceOf(se));
      const service = services.get(resolved);
      if (service) endpointHashes.set(resolved, hashText(JSON.stringify(service.endpoints)));
    }
  }

  const partial = { mesh, meshHash, services };
  const virtualServiceExportTo = stringList(meshConfig.defaultVirtualServiceExportTo);
  const virtualServices = expandDelegates(byKind<VirtualServiceSpec>('VirtualService'), virtualServiceExportTo).map((vs) =>
    prepareVirtualService(vs, partial, previous?.cache, cache),
  );
  const meshVirtualServices = virtualServices.filter((vs) => vs.gateways.includes(MESH_GATEWAY));
  const gatewayVirtualServices = new Map<string, IndexedVirtualService[]>();
  for (const vs of virtualServices) {
    for (const gateway of vs.gateways) {
      if (gateway === MESH_GATEWAY) continue;
      const list = gatewayVirtualServices.get(gateway);
      if (list) list.push(vs);
      else gatewayVirtualServices.set(gateway, [vs]);
    }
  }

  const destinationRules = new Map<string, IndexedDestinationRule[]>();
  const wildcardDestinationRules: IndexedDestinationRule[] = [];
  for (const dr of byKind<DestinationRuleSpec>('DestinationRule')) {
    if (!dr.spec?.host) continue;
    const namespace = namespaceOf(dr);
    const indexed: IndexedDestinationRule = {
      key: objectKey(dr),
      namespace,
      host: resolveHost(dr.spec.host, namespace),
      exportTo: dr.spec.exportTo,
      workloadSelector:
        dr.spec.workloadSelector?.matchLabels && Object.keys(dr.spec.workloadSelector.matchLabels).length > 0
          ? dr.spec.workloadSelector.matchLabels
          : undefined,
      spec: dr.spec,
      hash: objectHash(cache, dr),
    };
    if (indexed.host.startsWith('*')) wildcardDestinationRules.push(indexed);
    else {
      const list = destinationRules.get(indexed.host);
      if (list) list.push(indexed);
      else destinationRules.set(indexed.host, [indexed]);
      addConfigHost(services, indexed.host, namespace, dr.spec.exportTo);
    }
  }
  // most specific wildcard first
  wildcardDestinationRules.sort((a, b) => b.host.length - a.host.length || byString(a.key, b.key));
  for (const vs of meshVirtualServices) for (const host of vs.hosts) addConfigHost(services, host, vs.namespace, vs.exportTo);

  const exportDefaults = {
    service: stringList(meshConfig.defaultServiceExportTo),
    virtualService: stringList(meshConfig.defaultVirtualServiceExportTo),
    destinationRule: stringList(meshConfig.defaultDestinationRuleExportTo),
  };
  const unrestricted = (exportTo: string[] | undefined): boolean => !exportTo || exportTo.length === 0 || exportTo.includes('*');
  const namespaceIndependentVisibility =
    !exportDefaults.service &&
    !exportDefaults.virtualService &&
    !exportDefaults.destinationRule &&
    [...services.values()].every((s) => unrestricted(s.exportTo)) &&
    virtualServices.every((vs) => unrestricted(vs.exportTo)) &&
    [...destinationRules.values(), wildcardDestinationRules].every((list) => list.every((dr) => unrestricted(dr.exportTo)));
  const foreignDestinationRuleNamespaces = new Set<string>();
  for (const list of destinationRules.values()) {
    for (const dr of list) {
      const owner = services.get(dr.host)?.namespace;
      if (list.length > 1 || owner !== dr.namespace) foreignDestinationRuleNamespaces.add(dr.namespace);
    }
  }
  for (const dr of wildcardDestinationRules) foreignDestinationRuleNamespaces.add(dr.namespace);
  const selectorDestinationRuleNamespaces = new Set<string>();
  for (const list of [...destinationRules.values(), wildcardDestinationRules]) {
    for (const dr of list) if (dr.workloadSelector) selectorDestinationRuleNamespaces.add(dr.namespace);
  }
  for (const ns of selectorDestinationRuleNamespaces) foreignDestinationRuleNamespaces.add(ns);

  return {
    cluster: cluster.cluster,
    meshVersion: cluster.version,
    meshConfig,
    mesh,
    meshHash,
    services,
    exportDefaults,
    namespaceIndependentVisibility,
    foreignDestinationRuleNamespaces,
    selectorDestinationRuleNamespaces,
    serviceList: [...services.values()].sort((a, b) => byString(a.host, b.host)),
    endpointHashes,
    virtualServices,
    meshVirtualServices,
    gatewayVirtualServices,
    anyWorkloadDependentRule: virtualServices.some((vs) => vs.dependsOnWorkload),
    destinationRules,
    wildcardDestinationRules,
    gateways: byKind<GatewaySpec>('Gateway'),
    sidecars: groupByNamespace(byKind<SidecarSpec>('Sidecar')),
    peerAuthentications: groupByNamespace(byKind<PeerAuthenticationSpec>('PeerAuthentication')),
    authorizationPolicies: groupByNamespace(byKind<AuthorizationPolicySpec>('AuthorizationPolicy')),
    requestAuthentications: groupByNamespace(byKind<RequestAuthenticationSpec>('RequestAuthentication')),
    telemetries: groupByNamespace(byKind<TelemetrySpec>('Telemetry')),
    cache,
    memo: new Map(),
  };
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.length > 0 ? value.map(String) : undefined;
}

/** Canonical labels, for memo keys. */
export function labelsKey(labels: Record<string, string>): string {
  return canonicalJson(labels);
}

export { clusterName };
