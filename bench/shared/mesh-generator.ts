/**
 * The Istio objects the benches generate their meshes from (bench/render writes them as YAML files,
 * bench/convergence hands them to the renderer directly): a namespace-scoped Sidecar, a canary
 * VirtualService (a header match to v2, a weighted v1/v2 split), and a DestinationRule with subsets.
 */
import type { MeshObject } from '../../src/mesh/object.js';

/** A default Sidecar scoping egress to the proxy's own namespace and istio-system (Istio's advice for large meshes). */
export function namespaceScopedSidecar(namespace: string): MeshObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace }, spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] } };
}

export interface CanaryRoutes {
  /** A route for this URI prefix to subset v3, with its own timeout. */
  v3?: { prefix: string; timeout: string };
  /** The weighted split matches every path explicitly (`uri.prefix: /`) rather than having no match. */
  splitMatchesAllPaths?: boolean;
  /** Timeout of the weighted split. */
  splitTimeout?: string;
}

/** `end-user: jason` goes to v2; the rest is split 90/10 between v1 and v2, with retries. */
export function canaryVirtualService(namespace: string, name: string, routes: CanaryRoutes = {}): MeshObject {
  const http: object[] = [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: name, subset: 'v2' } }] }];
  if (routes.v3) http.push({ match: [{ uri: { prefix: routes.v3.prefix } }], route: [{ destination: { host: name, subset: 'v3' } }], timeout: routes.v3.timeout });
  http.push({
    ...(routes.splitMatchesAllPaths ? { match: [{ uri: { prefix: '/' } }] } : {}),
    route: [
      { destination: { host: name, subset: 'v1' }, weight: 90 },
      { destination: { host: name, subset: 'v2' }, weight: 10 },
    ],
    ...(routes.splitTimeout ? { timeout: routes.splitTimeout } : {}),
    retries: { attempts: 3, retryOn: '5xx,reset' },
  });
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec: { hosts: [name], http } };
}

/** Subsets by `version` label, outlier detection, and optionally a pending-request limit. */
export function subsetDestinationRule(namespace: string, name: string, versions: string[], opts: { http1MaxPendingRequests?: number } = {}): MeshObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name, namespace },
    spec: {
      host: name,
      trafficPolicy: {
        ...(opts.http1MaxPendingRequests !== undefined ? { connectionPool: { http: { http1MaxPendingRequests: opts.http1MaxPendingRequests } } } : {}),
        outlierDetection: { consecutive5xxErrors: 5 },
      },
      subsets: versions.map((v) => ({ name: v, labels: { version: v } })),
    },
  };
}
