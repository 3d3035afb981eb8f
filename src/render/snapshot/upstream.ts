import type { ClusterLoadAssignment, PeerAuthMode, UpstreamCluster } from '../../mesh/snapshot.js';
import { compact, freezeShared, exportedTo, hostMatchesPattern, labelsMatch } from './common.js';
import { cachedResource, labelsKey, type ClusterIndex, type IndexedDestinationRule } from './cluster-index.js';
import { inferServiceMtlsMode } from './inbound.js';
import type { ClusterRef } from './translate-route.js';
import {
  mergeTrafficPolicy,
  translateClientTls,
  translateConnectionPool,
  translateLoadBalancer,
  translateOutlierDetection,
} from './translate-cluster.js';

/**
 * The DestinationRule a proxy in `proxyNamespace` uses for `host`, as istiod picks it: among those
 * exported to the proxy, the one in the proxy's namespace, then the service's, then the root
 * namespace, then any other; exact hosts before wildcards.
 */
export function selectDestinationRule(
  index: ClusterIndex,
  host: string,
  proxyNamespace: string,
  proxyLabels: Record<string, string> = {},
): IndexedDestinationRule | undefined {
  const exactRules = index.destinationRules.get(host);
  if (!exactRules && index.wildcardDestinationRules.length === 0) return undefined;
  if (exactRules && exactRules.length === 1 && index.wildcardDestinationRules.length === 0 && !exactRules[0].workloadSelector) {
    const only = exactRules[0];
    return exportedTo(only.exportTo ?? index.exportDefaults.destinationRule, only.namespace, proxyNamespace) ? only : undefined;
  }
  const bySelector = index.selectorDestinationRuleNamespaces.has(proxyNamespace);
  const memoKey = `dr|${host}|${proxyNamespace}|${bySelector ? labelsKey(proxyLabels) : ''}`;
  if (index.memo.has(memoKey)) return index.memo.get(memoKey) as IndexedDestinationRule | undefined;
  const exact = index.destinationRules.get(host) ?? [];
  const wildcard = index.wildcardDestinationRules.filter((dr) => hostMatchesPattern(host, dr.host));
  // a workloadSelector limits a rule to the selected workloads of its own namespace, where it wins
  const candidates = [...exact, ...wildcard]
    .filter((dr) => exportedTo(dr.exportTo ?? index.exportDefaults.destinationRule, dr.namespace, proxyNamespace))
    .filter((dr) => !dr.workloadSelector || (dr.namespace === proxyNamespace && labelsMatch(dr.workloadSelector, proxyLabels)));
  const selected = candidates.find((dr) => dr.workloadSelector);
  const serviceNamespace = index.services.get(host)?.namespace;
  const preferred = [proxyNamespace, serviceNamespace, index.mesh.rootNamespace];
  let chosen: IndexedDestinationRule | undefined = selected;
  for (const ns of chosen ? [] : preferred) {
    chosen = candidates.find((dr) => dr.namespace === ns);
    if (chosen) break;
  }
  chosen ??= candidates[0];
  index.memo.set(memoKey, chosen);
  return chosen;
}

/** One upstream cluster with its DestinationRule policy merged and Istio's defaults filled; shared and frozen. */
export function buildUpstreamCluster(index: ClusterIndex, ref: ClusterRef, dr: IndexedDestinationRule | undefined): UpstreamCluster {
  const service = index.services.get(ref.host);
  const spiffeIds = service?.spiffeIds ?? [];
  // Auto mTLS follows the destination's namespace/mesh PeerAuthentication (DISABLE ⇒ plaintext).
  const serviceMtls = service && !service.meshExternal ? inferServiceMtlsMode(index, service.namespace) : undefined;
  const key = `${index.meshHash}|${ref.name}|${dr?.hash ?? ''}|${spiffeIds.join(',')}|${serviceMtls ?? ''}`;
  return cachedResource(index.cache, 'clusters', key, () => translateUpstreamCluster(index, ref, dr, spiffeIds, serviceMtls));
}

function translateUpstreamCluster(
  index: ClusterIndex,
  ref: ClusterRef,
  dr: IndexedDestinationRule | undefined,
  spiffeIds: string[],
  serviceMtls: PeerAuthMode | undefined,
): UpstreamCluster {
  const subsetPolicy = ref.subset ? dr?.spec.subsets?.find((s) => s.name === ref.subset)?.trafficPolicy : undefined;
  const policy = mergeTrafficPolicy(dr?.spec.trafficPolicy, subsetPolicy, ref.port);
  const passthrough = policy.loadBalancer?.simple === 'PASSTHROUGH';
  const autoPlaintext = index.mesh.enableAutoMtls && serviceMtls === 'DISABLE' && !passthrough;
  const cluster: UpstreamCluster = freezeShared(
    compact({
      name: ref.name,
      service: ref.host,
      port: ref.port,
      subset: ref.subset,
      lb: translateLoadBalancer(policy.loadBalancer),
      connectionPool: translateConnectionPool(policy.connectionPool, index.mesh.connectTimeoutMs),
      outlierDetection: translateOutlierDetection(policy.outlierDetection),
      tls: translateClientTls(policy.tls, spiffeIds) ?? (autoPlaintext ? { mode: 'DISABLE' as const, subjectAltNames: [] } : undefined),
    }),
  );
  return cluster;
}

/**
 * The endpoints of one cluster: the service's endpoints on that port, filtered by the subset's
 * labels. A subset no DestinationRule defines selects nothing (requests to it fail, as in Istio).
 */
export function buildLoadAssignment(index: ClusterIndex, ref: ClusterRef, dr: IndexedDestinationRule | undefined): ClusterLoadAssignment {
  const service = index.services.get(ref.host);
  const subset = ref.subset ? dr?.spec.subsets?.find((s) => s.name === ref.subset) : undefined;
  const labelsKey = subset ? JSON.stringify(Object.entries(subset.labels ?? {}).sort()) : ref.subset ? '<undefined subset>' : '';
  const key = `${ref.name}|${labelsKey}|${index.endpointHashes.get(ref.host) ?? ''}`;
  return cachedResource(index.cache, 'assignments', key, () => {
  const selector = subset?.labels ?? {};
  const endpoints =
    !service || (ref.subset && !subset)
      ? []
      : service.endpoints
          .filter((e) => e.servicePort === ref.port && Object.entries(selector).every(([k, v]) => e.endpoint.labels[k] === v))
          .map((e) => e.endpoint);
  return freezeShared({ cluster: ref.name, endpoints });
  });
}
