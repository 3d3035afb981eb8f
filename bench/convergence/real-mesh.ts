/**
 * The mesh bench/convergence serves, rendered by the operator's real renderer (src/render/snapshot,
 * wired as src/reconciler/control-plane.ts wires it): per namespace a Sidecar scoping egress to its
 * own namespace and istio-system (Istio's advice for large meshes), per service a Kubernetes Service,
 * a VirtualService and a DestinationRule with subsets. Proxies register their endpoints over discovery.
 */
import type { MeshObject } from '../../src/mesh/object.js';
import type { ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import { buildClusterIndex, buildProxySnapshotFromIndex, type ClusterIndex } from '../../src/render/snapshot/index.js';
import type { ClusterRender, WorkloadEndpoint } from '../../src/render/types.js';
import { canaryVirtualService, namespaceScopedSidecar, subsetDestinationRule } from '../shared/mesh-generator.js';

export const CLUSTER = 'bench';

export interface MeshShape {
  namespaces: string[];
  servicesPerNamespace: number;
}

export function namespaceOfProxy(shape: MeshShape, i: number): string {
  return shape.namespaces[i % shape.namespaces.length];
}

/** Proxies spread over every service of their namespace; a service's proxies share labels (one "shape"). */
export function serviceOfProxy(shape: MeshShape, i: number): string {
  return `svc-${Math.floor(i / shape.namespaces.length) % shape.servicesPerNamespace}`;
}

export function proxyIdentity(shape: MeshShape, i: number): ProxyIdentity {
  const namespace = namespaceOfProxy(shape, i);
  const service = serviceOfProxy(shape, i);
  return {
    id: `${CLUSTER}/${namespace}/${service}-v1/p${i}`,
    cluster: CLUSTER,
    namespace,
    workload: `${service}-v1`,
    labels: { app: service, version: 'v1' },
    service,
    serviceAccount: service,
    mode: 'sidecar',
  };
}

function virtualService(namespace: string, name: string, timeout: string): MeshObject {
  return canaryVirtualService(namespace, name, { splitTimeout: timeout });
}

function objectsFor(shape: MeshShape): MeshObject[] {
  const objects: MeshObject[] = [];
  for (const namespace of shape.namespaces) {
    objects.push(namespaceScopedSidecar(namespace));
    for (let s = 0; s < shape.servicesPerNamespace; s++) {
      const name = `svc-${s}`;
      objects.push({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
      objects.push(virtualService(namespace, name, '5s'));
      objects.push(subsetDestinationRule(namespace, name, ['v1', 'v2']));
    }
  }
  return objects;
}

/**
 * A cluster render the bench can change, and the render function the discovery server is given:
 * one cluster index per (cluster render, endpoint list), rebuilt incrementally from the previous one.
 */
export class BenchMesh {
  private cluster: ClusterRender;
  private index: { cluster: ClusterRender; endpoints: WorkloadEndpoint[]; index: ClusterIndex } | null = null;

  constructor(readonly shape: MeshShape) {
    this.cluster = {
      cluster: CLUSTER,
      overlay: 'kustomize/overlays/bench',
      version: '1.0.0',
      istioOperator: { apiVersion: 'install.istio.io/v1alpha1', kind: 'IstioOperator', metadata: { name: CLUSTER }, spec: { tag: '1.0.0' } },
      meshConfig: {},
      objects: objectsFor(shape),
    };
  }

  /** Sets the timeout of VirtualServices (namespace/name) as a new commit would (other objects keep their identity). */
  setTimeouts(targets: Array<{ namespace: string; name: string }>, timeout: string): void {
    const keys = new Set(targets.map((t) => `${t.namespace}/${t.name}`));
    this.cluster = {
      ...this.cluster,
      objects: this.cluster.objects.map((o) => (o.kind === 'VirtualService' && keys.has(`${o.metadata.namespace}/${o.metadata.name}`) ? virtualService(o.metadata.namespace as string, o.metadata.name, timeout) : o)),
    };
  }

  readonly render = (proxy: ProxyIdentity, endpoints: WorkloadEndpoint[]): ProxySnapshot => {
    const entry = this.index;
    if (!entry || entry.cluster !== this.cluster || entry.endpoints !== endpoints) {
      this.index = { cluster: this.cluster, endpoints, index: buildClusterIndex(this.cluster, endpoints, entry?.index) };
    }
    return buildProxySnapshotFromIndex((this.index as { index: ClusterIndex }).index, proxy);
  };
}
