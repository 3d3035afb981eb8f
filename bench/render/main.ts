/**
 * bench:render — validate + kustomize build of a generated mesh, and proxy snapshot rendering.
 *
 * Mesh: N services in N/20 namespaces, each a VirtualService with 3 match rules and a DestinationRule
 * with 3 subsets; 2 proxies (endpoints) per service. Each namespace has a default Sidecar that scopes
 * egress to its own namespace and istio-system (Istio's advice for large meshes); an unscoped run,
 * where every proxy sees every service, is measured on a sample of proxies.
 *
 *   node --import tsx bench/render/main.ts [--quick]
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import type { MeshObject } from '../../src/mesh/object.js';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { validateObjects } from '../../src/mesh/validate.js';
import { MemoryFileSystem } from '../../src/render/fs.js';
import { buildKustomization } from '../../src/render/kustomize/index.js';
import { buildClusterIndex, buildProxySnapshot, buildProxySnapshotFromIndex, type ClusterIndex } from '../../src/render/snapshot/index.js';
import { canonicalJson } from '../../src/render/hash.js';
import type { ClusterRender, WorkloadEndpoint } from '../../src/render/types.js';

const QUICK = process.argv.includes('--quick');
const SERVICES = QUICK ? 250 : 1000;
const PROXIES_PER_SERVICE = 2;
const SERVICES_PER_NAMESPACE = 20;
const UNSCOPED_SAMPLE = QUICK ? 20 : 100;
const CHANGE_ROUNDS = QUICK ? 10 : 30;

const namespaceOfService = (i: number): string => `ns-${String(Math.floor(i / SERVICES_PER_NAMESPACE)).padStart(3, '0')}`;
const serviceName = (i: number): string => `svc-${String(i).padStart(4, '0')}`;

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

/** An in-memory config repository: one file per namespace in base, an overlay with a label and a patch. */
function generateRepository(): MemoryFileSystem {
  const files: Record<string, string> = {};
  const namespaces = new Map<string, object[]>();
  for (let i = 0; i < SERVICES; i++) {
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
  return new MemoryFileSystem(files);
}

function endpointsFor(): WorkloadEndpoint[] {
  const out: WorkloadEndpoint[] = [];
  for (let i = 0; i < SERVICES; i++) {
    for (let p = 0; p < PROXIES_PER_SERVICE; p++) {
      const version = `v${p + 1}`;
      out.push({
        service: serviceName(i),
        namespace: namespaceOfService(i),
        address: `10.${Math.floor(i / 250)}.${i % 250}.${p + 1}`,
        port: 8080,
        labels: { app: serviceName(i), version },
        serviceAccount: serviceName(i),
        workload: `${serviceName(i)}-${version}`,
        tlsMode: 'istio',
        proxyId: `bench/${namespaceOfService(i)}/${serviceName(i)}-${version}/0`,
      });
    }
  }
  return out;
}

function proxiesFor(endpoints: WorkloadEndpoint[]): ProxyIdentity[] {
  return endpoints.map((e) => ({
    id: e.proxyId!,
    cluster: 'bench',
    namespace: e.namespace,
    workload: e.workload!,
    labels: e.labels,
    service: e.service,
    serviceAccount: e.serviceAccount!,
    mode: 'sidecar',
  }));
}

function clusterOf(objects: MeshObject[]): ClusterRender {
  return {
    cluster: 'bench',
    overlay: 'kustomize/overlays/bench',
    version: '1.16.1',
    istioOperator: { apiVersion: 'install.istio.io/v1alpha1', kind: 'IstioOperator', metadata: { name: 'bench' }, spec: { tag: '1.16.1' } },
    meshConfig: {},
    objects,
  };
}

/** CPU milliseconds of this process (user + system): the machine is shared, so wall time alone misleads. */
function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** [value, wall ms, cpu ms] */
function timeBoth<T>(fn: () => T): [T, number, number] {
  const wall = performance.now();
  const cpu = cpuMs();
  const value = fn();
  return [value, performance.now() - wall, cpuMs() - cpu];
}

function time<T>(fn: () => T): [T, number] {
  const [value, wall] = timeBoth(fn);
  return [value, wall];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A copy of the objects with one VirtualService's timeout changed (every other object keeps its identity). */
function changeOne(objects: MeshObject[], round: number): MeshObject[] {
  const target = serviceName(round % SERVICES);
  return objects.map((o) => {
    if (o.kind !== 'VirtualService' || o.metadata.name !== target) return o;
    const spec = structuredClone(o.spec) as { http: Array<{ timeout?: string }> };
    spec.http[1].timeout = `${10 + round}s`;
    return { ...o, spec };
  });
}

function renderAll(index: ClusterIndex, proxies: ProxyIdentity[]): number {
  let bytes = 0;
  for (const proxy of proxies) bytes += buildProxySnapshotFromIndex(index, proxy).version.length;
  return bytes;
}

async function main(): Promise<void> {
  const fs = generateRepository();
  // warm-up: JIT the loader, kustomize and renderer once on the same input
  await buildKustomization(fs, 'kustomize/overlays/bench');

  const loadBefore = loadavg()[0];
  const buildCpuStart = cpuMs();
  const [objects, buildMs] = await timeAsync(() => buildKustomization(fs, 'kustomize/overlays/bench'));
  const buildCpu = cpuMs() - buildCpuStart;
  const [validation, validateMs, validateCpu] = timeBoth(() => validateObjects(objects));
  if (validation.errors.length > 0) throw new Error(`generated mesh does not validate: ${validation.errors[0].message}`);

  const endpoints = endpointsFor();
  const proxies = proxiesFor(endpoints);
  const cluster = clusterOf(objects);

  // scoped mesh (Sidecar per namespace): fresh index, every proxy once
  renderAll(buildClusterIndex(cluster, endpoints), proxies.slice(0, 50)); // warm-up
  const [scopedIndex, scopedIndexMs, scopedIndexCpu] = timeBoth(() => buildClusterIndex(cluster, endpoints));
  const [, scopedRenderMs, scopedRenderCpu] = timeBoth(() => renderAll(scopedIndex, proxies));
  const scopedPerSecond = proxies.length / ((scopedIndexMs + scopedRenderMs) / 1000);
  const scopedPerCpuSecond = proxies.length / ((scopedIndexCpu + scopedRenderCpu) / 1000);
  const scopedSnapshotBytes = canonicalJson(buildProxySnapshotFromIndex(scopedIndex, proxies[0])).length;

  // unscoped mesh (no Sidecar resources): every proxy sees every service
  const unscopedCluster = clusterOf(objects.filter((o) => o.kind !== 'Sidecar'));
  const sample = proxies.filter((_, i) => i % Math.floor(proxies.length / UNSCOPED_SAMPLE) === 0).slice(0, UNSCOPED_SAMPLE);
  const [unscopedIndex, unscopedIndexMs] = time(() => buildClusterIndex(unscopedCluster, endpoints));
  const [, unscopedRenderMs, unscopedRenderCpu] = timeBoth(() => renderAll(unscopedIndex, sample));
  const unscopedPerSecond = sample.length / (unscopedRenderMs / 1000);
  const unscopedPerCpuSecond = sample.length / (unscopedRenderCpu / 1000);
  const unscopedSnapshotBytes = canonicalJson(buildProxySnapshotFromIndex(unscopedIndex, sample[0])).length;

  // one-object change: one proxy re-rendered incrementally (previous index) vs a full render
  // cpu time: the medians of wall time swing with the machine's load, the ratio of cpu times does not
  const fullMs: number[] = [];
  const incrementalMs: number[] = [];
  const reparsedMs: number[] = [];
  let previous = scopedIndex;
  let current = objects;
  for (let round = 0; round < CHANGE_ROUNDS; round++) {
    current = changeOne(current, round);
    const proxy = proxies[(round % SERVICES) * PROXIES_PER_SERVICE];
    const changedCluster = clusterOf(current);
    const [full, , f] = timeBoth(() => buildProxySnapshot({ cluster: changedCluster, endpoints, proxy }));
    const [incremental, , inc] = timeBoth(() => {
      const index = buildClusterIndex(changedCluster, endpoints, previous);
      return { index, snapshot: buildProxySnapshotFromIndex(index, proxy) };
    });
    if (incremental.snapshot.version !== full.version) throw new Error('incremental and full renders differ');
    // the same change arriving as freshly parsed objects (a new commit): translations found by content hash
    const reparsed = structuredClone(current);
    const [, , rep] = timeBoth(() => buildProxySnapshotFromIndex(buildClusterIndex(clusterOf(reparsed), endpoints, incremental.index), proxy));
    previous = incremental.index;
    fullMs.push(f);
    incrementalMs.push(inc);
    reparsedMs.push(rep);
  }
  const fullMedian = median(fullMs);
  const incrementalMedian = median(incrementalMs);
  const reparsedMedian = median(reparsedMs);

  const rows: Array<[string, string]> = [
    ['services / proxies / objects', `${SERVICES} / ${proxies.length} / ${objects.length}`],
    ['load average (1 min) at start, 2 cores', `${loadBefore.toFixed(1)}`],
    ['kustomize build (in-memory repo)', `${buildMs.toFixed(1)} ms wall, ${buildCpu.toFixed(1)} ms cpu`],
    ['validate (schemas + semantic + cross-object)', `${validateMs.toFixed(1)} ms wall, ${validateCpu.toFixed(1)} ms cpu`],
    ['build + validate', `${(buildMs + validateMs).toFixed(1)} ms wall, ${(buildCpu + validateCpu).toFixed(1)} ms cpu  (goal < 1000 ms)`],
    ['scoped: index build', `${scopedIndexMs.toFixed(1)} ms wall, ${scopedIndexCpu.toFixed(1)} ms cpu`],
    [`scoped: ${proxies.length} snapshots`, `${scopedRenderMs.toFixed(1)} ms wall, ${scopedRenderCpu.toFixed(1)} ms cpu (${(scopedSnapshotBytes / 1024).toFixed(1)} KiB each)`],
    ['scoped: snapshots/s (index build included)', `${scopedPerSecond.toFixed(0)} wall, ${scopedPerCpuSecond.toFixed(0)} per cpu-second  (goal ≥ 2000)`],
    ['unscoped: index build', `${unscopedIndexMs.toFixed(1)} ms wall`],
    [`unscoped: ${sample.length} snapshots`, `${unscopedRenderMs.toFixed(1)} ms wall, ${unscopedRenderCpu.toFixed(1)} ms cpu (${(unscopedSnapshotBytes / 1024).toFixed(0)} KiB each)`],
    ['unscoped: snapshots/s', `${unscopedPerSecond.toFixed(0)} wall, ${unscopedPerCpuSecond.toFixed(0)} per cpu-second`],
    ['one-object change: full render of one proxy (median)', `${fullMedian.toFixed(2)} ms cpu`],
    ['one-object change: incremental (previous index, median)', `${incrementalMedian.toFixed(2)} ms cpu  (${(fullMedian / incrementalMedian).toFixed(1)}x cheaper)`],
    ['one-object change, re-parsed objects (content hash)', `${reparsedMedian.toFixed(2)} ms cpu  (${(fullMedian / reparsedMedian).toFixed(1)}x cheaper)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`bench:render${QUICK ? ' --quick' : ''}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log(
    JSON.stringify({
      bench: 'render',
      quick: QUICK,
      services: SERVICES,
      proxies: proxies.length,
      loadAverage: +loadBefore.toFixed(1),
      buildMs: +buildMs.toFixed(1),
      validateMs: +validateMs.toFixed(1),
      buildValidateMs: +(buildMs + validateMs).toFixed(1),
      snapshotsPerSecond: Math.round(scopedPerSecond),
      snapshotsPerCpuSecond: Math.round(scopedPerCpuSecond),
      unscopedSnapshotsPerSecond: Math.round(unscopedPerSecond),
      fullOneProxyCpuMs: +fullMedian.toFixed(2),
      incrementalOneProxyCpuMs: +incrementalMedian.toFixed(2),
      reparsedIncrementalOneProxyCpuMs: +reparsedMedian.toFixed(2),
      incrementalSpeedup: +(fullMedian / incrementalMedian).toFixed(1),
    }),
  );
}

await main();
