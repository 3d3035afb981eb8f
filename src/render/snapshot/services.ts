import type { MeshObject } from '../../mesh/object.js';
import type { ServiceEntrySpec, WorkloadEntrySpec } from '../../mesh/api/index.js';
import type { Endpoint } from '../../mesh/snapshot.js';
import type { WorkloadEndpoint } from '../types.js';
import { DOMAIN_SUFFIX, byString, compact, hasLabels, labelsMatch, namespaceOf, resolveHost, selectorLabels, sortedUnique } from './common.js';

/** An endpoint of a service, with the service port it serves (a ServiceEntry may map it to another port). */
export interface ServiceEndpoint {
  servicePort: number;
  endpoint: Endpoint;
}

/** A host the proxy can route to: a Kubernetes service (from the registry), a ServiceEntry host, or a host only config names. */
export interface ServiceInfo {
  host: string;
  namespace: string;
  /** Kubernetes services only: the short name, usable from the same namespace. */
  shortName?: string;
  origin: 'kubernetes' | 'serviceentry' | 'config';
  /** A ServiceEntry outside the mesh (location MESH_EXTERNAL, the default): no PeerAuthentication applies. */
  meshExternal?: true;
  ports: number[];
  exportTo?: string[];
  endpoints: ServiceEndpoint[];
  /** Identities the service's endpoints present (secure naming), sorted. */
  spiffeIds: string[];
}

export function endpointHost(endpoint: WorkloadEndpoint): string {
  return endpoint.service.includes('.') ? endpoint.service : `${endpoint.service}.${endpoint.namespace}.svc.${DOMAIN_SUFFIX}`;
}

function compareEndpoints(a: ServiceEndpoint, b: ServiceEndpoint): number {
  return (
    a.servicePort - b.servicePort ||
    byString(a.endpoint.address, b.endpoint.address) ||
    a.endpoint.port - b.endpoint.port ||
    byString(a.endpoint.workload ?? '', b.endpoint.workload ?? '')
  );
}

function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function translateWorkloadEndpoint(e: WorkloadEndpoint): Endpoint {
  return compact({
    address: e.address,
    port: e.port,
    labels: { ...e.labels },
    tlsMode: e.tlsMode,
    serviceAccount: e.serviceAccount,
    weight: 1,
    workload: e.workload,
    namespace: e.namespace,
  });
}

/** Services backed by registered workloads, keyed by FQDN (or the ServiceEntry host they declare). */
export function buildEndpointServices(endpoints: readonly WorkloadEndpoint[], trustDomain: string): Map<string, ServiceInfo> {
  const services = new Map<string, ServiceInfo>();
  for (const e of endpoints) {
    const host = endpointHost(e);
    let service = services.get(host);
    if (!service) {
      service = compact({
        host,
        namespace: e.namespace,
        shortName: e.service.includes('.') ? undefined : e.service,
        origin: 'kubernetes' as const,
        ports: [],
        endpoints: [],
        spiffeIds: [],
      });
      services.set(host, service);
    }
    service.endpoints.push({ servicePort: e.port, endpoint: translateWorkloadEndpoint(e) });
  }
  for (const service of services.values()) {
    service.endpoints.sort(compareEndpoints);
    service.ports = [...new Set(service.endpoints.map((e) => e.servicePort))].sort((a, b) => a - b);
    service.spiffeIds = sortedUnique(
      service.endpoints
        .filter((e) => e.endpoint.serviceAccount)
        .map((e) => spiffeId(trustDomain, e.endpoint.namespace ?? service!.namespace, e.endpoint.serviceAccount!)),
    );
  }
  return services;
}

/** What a ServiceEntry's `workloadSelector` may select in its namespace: WorkloadEntry objects and registered workloads. */
export interface SelectableWorkloads {
  workloadEntries: readonly MeshObject<WorkloadEntrySpec>[];
  endpoints: readonly WorkloadEndpoint[];
}

const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

/** Istio's transport socket match: only the `istio` label value means the workload accepts mTLS. */
function tlsModeOf(labels: Record<string, string>): Endpoint['tlsMode'] {
  return labels[TLS_MODE_LABEL] === 'istio' ? 'istio' : 'disabled';
}

function workloadEntryEndpoints(se: MeshObject<ServiceEntrySpec>, entries: readonly WorkloadEntrySpec[]): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  for (const we of entries) {
    if (!we.address) continue;
    for (const port of se.spec.ports ?? []) {
      const labels = { ...(we.labels ?? {}) };
      out.push({
        servicePort: port.number,
        endpoint: compact({
          address: we.address,
          port: (port.name !== undefined ? we.ports?.[port.name] : undefined) ?? port.targetPort ?? port.number,
          labels,
          tlsMode: tlsModeOf(labels),
          serviceAccount: we.serviceAccount,
          weight: we.weight ?? 1,
          namespace: namespaceOf(se),
        }),
      });
    }
  }
  return out;
}

/**
 * `workloadSelector` (Istio: MESH_INTERNAL entries, instead of `endpoints`): WorkloadEntry objects
 * and registered workloads of the entry's namespace whose labels match. A WorkloadEntry's tlsMode
 * comes from its labels (no label: plaintext); a registered workload keeps its own (its proxy's).
 */
function selectedEndpoints(se: MeshObject<ServiceEntrySpec>, selectable: SelectableWorkloads): ServiceEndpoint[] {
  const namespace = namespaceOf(se);
  const selector = selectorLabels(se.spec.workloadSelector) ?? {};
  const entries = selectable.workloadEntries
    .filter((we) => namespaceOf(we) === namespace && labelsMatch(selector, we.spec.labels ?? {}))
    .map((we) => we.spec);
  const out = workloadEntryEndpoints(se, entries);
  for (const e of selectable.endpoints) {
    if (e.namespace !== namespace || !labelsMatch(selector, e.labels)) continue;
    for (const port of se.spec.ports ?? []) out.push({ servicePort: port.number, endpoint: translateWorkloadEndpoint(e) });
  }
  return out;
}

function serviceEntryEndpoints(se: MeshObject<ServiceEntrySpec>, host: string, selectable: SelectableWorkloads): ServiceEndpoint[] {
  const spec = se.spec;
  const out: ServiceEndpoint[] = [];
  const ports = spec.ports ?? [];
  if (hasLabels(spec.workloadSelector) && !(spec.endpoints && spec.endpoints.length > 0)) {
    out.push(...selectedEndpoints(se, selectable));
  } else if (spec.resolution === 'STATIC' || (spec.endpoints && spec.endpoints.length > 0)) {
    out.push(...workloadEntryEndpoints(se, spec.endpoints ?? []));
  } else if ((spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN') && !host.startsWith('*')) {
    // DNS resolution without endpoints: the host name itself is the endpoint
    for (const port of ports) {
      out.push({
        servicePort: port.number,
        endpoint: { address: host, port: port.targetPort ?? port.number, labels: {}, tlsMode: 'disabled', weight: 1 },
      });
    }
  }
  return out;
}

/**
 * Adds ServiceEntry hosts. A host also registered by workloads keeps those endpoints; a host
 * declared by two entries keeps the first (entries are visited in namespace/name order).
 */
export function addServiceEntries(
  services: Map<string, ServiceInfo>,
  entries: readonly MeshObject<ServiceEntrySpec>[],
  trustDomain: string,
  selectable: SelectableWorkloads = { workloadEntries: [], endpoints: [] },
): void {
  for (const se of entries) {
    const namespace = namespaceOf(se);
    for (const rawHost of se.spec.hosts ?? []) {
      const host = resolveHost(rawHost, namespace);
      if (services.has(host) && services.get(host)!.origin === 'serviceentry') continue;
      const registered = services.get(host);
      const endpoints = [...serviceEntryEndpoints(se, host, selectable), ...(registered?.endpoints ?? [])].sort(compareEndpoints);
      const declaredSans = se.spec.subjectAltNames ?? [];
      const accountIds = endpoints
        .filter((e) => e.endpoint.serviceAccount)
        .map((e) => spiffeId(trustDomain, e.endpoint.namespace ?? namespace, e.endpoint.serviceAccount!));
      services.set(
        host,
        compact({
          host,
          namespace,
          origin: 'serviceentry' as const,
          meshExternal: se.spec.location === 'MESH_INTERNAL' ? undefined : (true as const),
          ports: sortedUnique((se.spec.ports ?? []).map((p) => String(p.number)).concat(registered?.ports.map(String) ?? []))
            .map(Number)
            .sort((a, b) => a - b),
          exportTo: se.spec.exportTo,
          endpoints,
          spiffeIds: sortedUnique([...declaredSans, ...accountIds]),
        }),
      );
    }
  }
}

/** A host named only by configuration (a VirtualService or DestinationRule): routable, no endpoints. */
export function addConfigHost(services: Map<string, ServiceInfo>, host: string, namespace: string, exportTo?: string[]): void {
  if (host.includes('*') || services.has(host)) return;
  services.set(host, compact({ host, namespace, origin: 'config' as const, ports: [], exportTo, endpoints: [], spiffeIds: [] }));
}

interface KubernetesServiceSpec {
  ports?: Array<{ port?: number; targetPort?: number | string; name?: string }>;
}

const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

/**
 * Kubernetes Service objects in the cluster's configuration: they name the service's ports (the
 * registry may not know them yet) and may carry Istio's exportTo annotation. Endpoints registered
 * on a numeric targetPort are mapped back to the service port.
 */
export function addKubernetesServices(services: Map<string, ServiceInfo>, objects: readonly MeshObject<KubernetesServiceSpec>[]): void {
  for (const svc of objects) {
    const namespace = namespaceOf(svc);
    const host = `${svc.metadata.name}.${namespace}.svc.${DOMAIN_SUFFIX}`;
    const declared = (svc.spec?.ports ?? []).filter((p) => Number.isInteger(p.port));
    const targetToPort = new Map<number, number>();
    for (const p of declared) if (typeof p.targetPort === 'number') targetToPort.set(p.targetPort, p.port!);
    const registered = services.get(host);
    const endpoints = (registered?.endpoints ?? [])
      .map((e) => (targetToPort.has(e.servicePort) ? { servicePort: targetToPort.get(e.servicePort)!, endpoint: e.endpoint } : e))
      .sort(compareEndpoints);
    const annotation = svc.metadata.annotations?.[EXPORT_TO_ANNOTATION];
    const ports = new Set<number>([...declared.map((p) => p.port!), ...endpoints.map((e) => e.servicePort)]);
    services.set(
      host,
      compact({
        host,
        namespace,
        shortName: svc.metadata.name,
        origin: 'kubernetes' as const,
        ports: [...ports].sort((a, b) => a - b),
        exportTo: annotation ? annotation.split(',').map((s) => s.trim()).filter((s) => s.length > 0) : undefined,
        endpoints,
        spiffeIds: registered?.spiffeIds ?? [],
      }),
    );
  }
}
