/** The generated mesh of bench:render, as an in-memory config repository (shared with profiling scripts). */
import { stringify } from 'yaml';
import { MemoryFileSystem } from '../../src/render/fs.js';
import { canaryVirtualService, namespaceScopedSidecar, subsetDestinationRule } from '../shared/mesh-generator.js';

export const SERVICES_PER_NAMESPACE = 20;

export const namespaceOfService = (i: number): string => `ns-${String(Math.floor(i / SERVICES_PER_NAMESPACE)).padStart(3, '0')}`;
export const serviceName = (i: number): string => `svc-${String(i).padStart(4, '0')}`;

function serviceDocs(i: number): object[] {
  const name = serviceName(i);
  const namespace = namespaceOfService(i);
  return [
    canaryVirtualService(namespace, name, { v3: { prefix: '/api/v3', timeout: '2s' }, splitMatchesAllPaths: true }),
    subsetDestinationRule(namespace, name, ['v1', 'v2', 'v3'], { http1MaxPendingRequests: 100 }),
  ];
}

/**
 * The files of a config repository with `services` services: one file per namespace in base (a default
 * Sidecar scoping egress, then each service's VirtualService and DestinationRule), and an overlay with
 * a label and a JSON 6902 patch, at kustomize/overlays/bench.
 */
export function generateFiles(services: number): Record<string, string> {
  const files: Record<string, string> = {};
  const namespaces = new Map<string, object[]>();
  for (let i = 0; i < services; i++) {
    const ns = namespaceOfService(i);
    if (!namespaces.has(ns)) {
      namespaces.set(ns, [namespaceScopedSidecar(ns)]);
    }
    namespaces.get(ns)!.push(...serviceDocs(i));
  }
  for (const [ns, docs] of namespaces) files[`kustomize/base/${ns}.yaml`] = docs.map((d) => stringify(d)).join('---\n');
  files['kustomize/base/kustomization.yaml'] = stringify({ resources: [...namespaces.keys()].map((ns) => `${ns}.yaml`) });
  files['kustomize/overlays/bench/kustomization.yaml'] = stringify({
    resources: ['../../base'],
    labels: [{ pairs: { 'trellis.dev/cluster': 'bench' } }],
    patches: [
      {
        target: { kind: 'VirtualService', name: serviceName(0) },
        patch: stringify([{ op: 'replace', path: '/spec/http/1/timeout', value: '3s' }]),
      },
    ],
  });
  return files;
}

export const BENCH_OVERLAY = 'kustomize/overlays/bench';

export function generateRepository(services: number): MemoryFileSystem {
  return new MemoryFileSystem(generateFiles(services));
}
