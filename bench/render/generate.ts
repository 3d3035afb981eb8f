/** The generated mesh of bench:render, as an in-memory config repository (shared with profiling scripts). */
import { stringify } from 'yaml';
import { MemoryFileSystem } from '../../src/render/fs.js';

export const SERVICES_PER_NAMESPACE = 20;

export const namespaceOfService = (i: number): string => `ns-${String(Math.floor(i / SERVICES_PER_NAMESPACE)).padStart(3, '0')}`;
export const serviceName = (i: number): string => `svc-${String(i).padStart(4, '0')}`;

function serviceDocs(i: number): object[] {
  const name = serviceName(i);
  const namespace = namespaceOfService(i);
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name, namespace },
      spec: {
        hosts: [name],
        http: [
          { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: name, subset: 'v2' } }] },
          { match: [{ uri: { prefix: '/api/v3' } }], route: [{ destination: { host: name, subset: 'v3' } }], timeout: '2s' },
          {
            match: [{ uri: { prefix: '/' } }],
            route: [
              { destination: { host: name, subset: 'v1' }, weight: 90 },
              { destination: { host: name, subset: 'v2' }, weight: 10 },
            ],
            retries: { attempts: 3, retryOn: '5xx,reset' },
          },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name, namespace },
      spec: {
        host: name,
        trafficPolicy: { connectionPool: { http: { http1MaxPendingRequests: 100 } }, outlierDetection: { consecutive5xxErrors: 5 } },
        subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
      },
    },
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
      namespaces.set(ns, [
        { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: ns }, spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] } },
      ]);
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
