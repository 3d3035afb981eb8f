import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import type { MeshObject } from '../../../src/mesh/object.js';
import type { MeshConfig } from '../../../src/mesh/api/index.js';
import type { ProxyIdentity } from '../../../src/mesh/snapshot.js';
import type { ClusterRender, SnapshotInput, WorkloadEndpoint } from '../../../src/render/types.js';

/** A ClusterRender built by hand, as the repository renderer would produce it. */
export function clusterOf(objects: MeshObject[], meshConfig: MeshConfig = {}, version = '1.16.1', cluster = 'test'): ClusterRender {
  return {
    cluster,
    overlay: `kustomize/overlays/${cluster}`,
    version,
    istioOperator: { apiVersion: 'install.istio.io/v1alpha1', kind: 'IstioOperator', metadata: { name: 'mesh' }, spec: { tag: version, meshConfig } },
    meshConfig,
    objects,
  };
}

export function objectsFromYaml(text: string): MeshObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as MeshObject | null)
    .filter((o): o is MeshObject => !!o && typeof o === 'object' && typeof o.kind === 'string');
}

export function proxyOf(p: Partial<ProxyIdentity> & { namespace: string; workload: string }, cluster = 'test'): ProxyIdentity {
  return {
    id: `${cluster}/${p.namespace}/${p.workload}/0`,
    cluster,
    labels: {},
    serviceAccount: 'default',
    mode: 'sidecar',
    ...p,
  };
}

export function endpointOf(e: Partial<WorkloadEndpoint> & { service: string; address: string }): WorkloadEndpoint {
  return { namespace: 'default', port: 9080, labels: { app: e.service }, tlsMode: 'istio', ...e };
}

/**
 * A golden case: `<case>.in.yaml` holds a first document `kind: GoldenCase` (description, meshConfig,
 * meshVersion, proxy, endpoints) followed by the cluster's mesh objects.
 */
export function loadGoldenInput(file: string): { description: string; input: SnapshotInput } {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
  const head = docs[0] as {
    kind: string;
    description?: string;
    meshConfig?: MeshConfig;
    meshVersion?: string;
    proxy: Partial<ProxyIdentity> & { namespace: string; workload: string };
    endpoints?: Array<Partial<WorkloadEndpoint> & { service: string; address: string }>;
  };
  if (head?.kind !== 'GoldenCase') throw new Error(`${file}: the first document must be kind: GoldenCase`);
  const objects = docs.slice(1).filter((o) => o && typeof o === 'object') as MeshObject[];
  return {
    description: head.description ?? '',
    input: {
      cluster: clusterOf(objects, head.meshConfig ?? {}, head.meshVersion ?? '1.16.1'),
      endpoints: (head.endpoints ?? []).map(endpointOf),
      proxy: proxyOf(head.proxy),
    },
  };
}

/** YAML as golden files store it: no anchors for shared objects. */
export function toGoldenYaml(value: unknown): string {
  return stringify(value, { aliasDuplicateObjects: false, lineWidth: 0 });
}
