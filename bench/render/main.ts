/**
 * bench:render — validate + kustomize build of a generated mesh, and proxy snapshot rendering.
 *
 * Mesh: N services in N/20 namespaces, each a VirtualService with 3 match rules and a DestinationRule
 * with 3 subsets; 2 proxies (endpoints) per service. Each namespace has a default Sidecar that scopes
 * egress to its own namespace and istio-system (Istio's advice for large meshes); an unscoped run,
 * where every proxy sees every service, is measured on a sample of proxies.
 *
 * Also: build + validate at 250/500/1,000 services (linearity), and the render cache across commits
 * (src/render/cache.ts) on the sample repository: cold, warm (nothing changed) and after a one-file change.
 *
 *   node --import tsx bench/render/main.ts [--quick]
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { MeshObject } from '../../src/mesh/object.js';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { validateObjects } from '../../src/mesh/validate.js';
import { MemoryFileSystem } from '../../src/render/fs.js';
import { buildKustomization } from '../../src/render/kustomize/index.js';
import { clone, type Json } from '../../src/render/kustomize/resource.js';
import { createRenderCache, deepFreeze } from '../../src/render/cache.js';
import { loadRepository, loadRepositoryFromDir } from '../../src/render/repository.js';
import { BENCH_OVERLAY, generateFiles, namespaceOfService, serviceName } from './generate.js';
import { buildClusterIndex, buildProxySnapshot, buildProxySnapshotFromIndex, type ClusterIndex } from '../../src/render/snapshot/index.js';
import { canonicalJson } from '../../src/render/hash.js';
import type { ClusterRender, WorkloadEndpoint } from '../../src/render/types.js';

const QUICK = process.argv.includes('--quick');
const SERVICES = QUICK ? 250 : 1000;
const PROXIES_PER_SERVICE = 2;
const UNSCOPED_SAMPLE = QUICK ? 20 : 100;
const CHANGE_ROUNDS = QUICK ? 10 : 30;

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

/** Build + validate of a freshly generated mesh of `services` services (no cache): [wall ms, cpu ms]. */
async function buildValidate(services: number): Promise<[number, number]> {
  const fs = new MemoryFileSystem(generateFiles(services));
  const wall = performance.now();
  const cpu = cpuMs();
  const objects = await buildKustomization(fs, BENCH_OVERLAY);
  const validation = validateObjects(objects);
  if (validation.errors.length > 0) throw new Error(`generated mesh does not validate: ${validation.errors[0].message}`);
  return [performance.now() - wall, cpuMs() - cpu];
}

/** Best of `rounds` (the machine is shared: the minimum is the least disturbed run). */
async function best(rounds: number, fn: () => Promise<[number, number]>): Promise<[number, number]> {
  let out: [number, number] = [Infinity, Infinity];
  for (let i = 0; i < rounds; i++) {
    const [wall, cpu] = await fn();
    out = [Math.min(out[0], wall), Math.min(out[1], cpu)];
  }
  return out;
}

const SAMPLE_REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE_VS_FILE = 'kustomize/base/virtual-services.yaml';

/** The sample repository rendered from disk without a cache, with a cold cache, warm, and after a one-file change. */
async function sampleRepositoryTimes(): Promise<Record<string, [number, number]>> {
  const rounds = QUICK ? 5 : 15;
  const timed = async (fn: () => Promise<unknown>): Promise<[number, number]> => {
    const wall = performance.now();
    const cpu = cpuMs();
    await fn();
    return [performance.now() - wall, cpuMs() - cpu];
  };
  await loadRepositoryFromDir(SAMPLE_REPO); // JIT and schema compilation
  const uncached = await best(rounds, () => timed(() => loadRepositoryFromDir(SAMPLE_REPO)));
  const cold = await best(rounds, () => timed(() => loadRepositoryFromDir(SAMPLE_REPO, { cache: createRenderCache() })));
  const cache = createRenderCache();
  await loadRepositoryFromDir(SAMPLE_REPO, { cache });
  const warm = await best(rounds, () => timed(() => loadRepositoryFromDir(SAMPLE_REPO, { cache })));
  // one-file change, in memory (the checkout on disk is not touched)
  const files = await readSampleFiles();
  const memCache = createRenderCache();
  await loadRepository(new MemoryFileSystem(files), { cache: memCache });
  let round = 0;
  const changed = await best(rounds, () => {
    // a fresh content each round, so the changed file is never a cache hit
    const text = files[SAMPLE_VS_FILE].replace('timeout: 6s', `timeout: ${7 + round++}s`);
    return timed(() => loadRepository(new MemoryFileSystem({ ...files, [SAMPLE_VS_FILE]: text }), { cache: memCache }));
  });
  return { uncached, cold, warm, changed };
}

async function readSampleFiles(): Promise<Record<string, string>> {
  const { readdir, readFile, stat } = await import('node:fs/promises');
  const files: Record<string, string> = { 'trellis.yaml': await readFile(`${SAMPLE_REPO}trellis.yaml`, 'utf8') };
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(`${SAMPLE_REPO}${rel}`)) {
      const path = `${rel}/${entry}`;
      if ((await stat(`${SAMPLE_REPO}${path}`)).isDirectory()) await walk(path);
      else files[path] = await readFile(`${SAMPLE_REPO}${path}`, 'utf8');
    }
  };
  await walk('versions');
  await walk('kustomize');
  return files;
}

async function main(): Promise<void> {
  const fs = new MemoryFileSystem(generateFiles(SERVICES));
  // warm-up: JIT the loader, kustomize and the validators (ajv compiles each kind's schema on first use)
  validateObjects(await buildKustomization(fs, BENCH_OVERLAY));

  const loadBefore = loadavg()[0];
  // best of 3 per phase: on a shared machine the least disturbed run is the closest to the code's cost
  let objects: MeshObject[] = [];
  let [buildMs, buildCpu, validateMs, validateCpu] = [Infinity, Infinity, Infinity, Infinity];
  for (let round = 0; round < 3; round++) {
    const buildCpuStart = cpuMs();
    const [built, wall] = await timeAsync(() => buildKustomization(fs, BENCH_OVERLAY));
    buildCpu = Math.min(buildCpu, cpuMs() - buildCpuStart);
    buildMs = Math.min(buildMs, wall);
    const [validation, vWall, vCpu] = timeBoth(() => validateObjects(built));
    if (validation.errors.length > 0) throw new Error(`generated mesh does not validate: ${validation.errors[0].message}`);
    [validateMs, validateCpu] = [Math.min(validateMs, vWall), Math.min(validateCpu, vCpu)];
    objects = built;
  }

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

  // linearity: build + validate at growing sizes, best of a few runs each
  const sizes = QUICK ? [250, 500] : [250, 500, 1000];
  const scaling: Array<[number, number, number]> = [];
  for (const n of sizes) {
    const [wall, cpu] = await best(QUICK ? 2 : 3, () => buildValidate(n));
    scaling.push([n, wall, cpu]);
  }

  // cached values: deep-freeze once, or copy on every use?
  let freezeMs = Infinity;
  let copyMs = Infinity;
  for (let round = 0; round < 5; round++) {
    const copies = objects.map((o) => clone(o as unknown as Json));
    freezeMs = Math.min(freezeMs, timeBoth(() => deepFreeze(copies))[2]);
    copyMs = Math.min(copyMs, timeBoth(() => objects.map((o) => clone(o as unknown as Json)))[2]);
  }

  // the generated mesh through the render cache: cold, then warm (same content)
  const meshCache = createRenderCache();
  const [, meshColdMs] = await timeAsync(() => buildKustomization(fs, BENCH_OVERLAY, { cache: meshCache }));
  const [, meshWarmMs] = await timeAsync(() => buildKustomization(fs, BENCH_OVERLAY, { cache: meshCache }));

  const sampleRepo = await sampleRepositoryTimes();
  const loadAfter = loadavg()[0];

  const rows: Array<[string, string]> = [
    ['services / proxies / objects', `${SERVICES} / ${proxies.length} / ${objects.length}`],
    ['load average (1 min) at start / end, 2 cores', `${loadBefore.toFixed(1)} / ${loadAfter.toFixed(1)}`],
    ['kustomize build (in-memory repo, best of 3)', `${buildMs.toFixed(1)} ms wall, ${buildCpu.toFixed(1)} ms cpu`],
    ['validate (schemas + semantic + cross-object, best of 3)', `${validateMs.toFixed(1)} ms wall, ${validateCpu.toFixed(1)} ms cpu`],
    ['build + validate', `${(buildMs + validateMs).toFixed(1)} ms wall, ${(buildCpu + validateCpu).toFixed(1)} ms cpu  (goal < 1000 ms)`],
    ...scaling.map(([n, wall, cpu]): [string, string] => [
      `build + validate, ${n} services (best of runs)`,
      `${wall.toFixed(1)} ms wall, ${cpu.toFixed(1)} ms cpu  (${((cpu / n) * 1000).toFixed(0)} µs cpu per service)`,
    ]),
    ['kustomize build through a render cache: cold / warm', `${meshColdMs.toFixed(1)} ms / ${meshWarmMs.toFixed(1)} ms wall (warm: parses served from the cache)`],
    [`cached objects: deep-freeze once vs copy per use (${objects.length})`, `${freezeMs.toFixed(1)} ms cpu once vs ${copyMs.toFixed(1)} ms cpu per use`],
    ['sample repo render, no cache (disk)', `${sampleRepo.uncached[0].toFixed(1)} ms wall, ${sampleRepo.uncached[1].toFixed(1)} ms cpu`],
    ['sample repo render, cold cache (disk)', `${sampleRepo.cold[0].toFixed(1)} ms wall, ${sampleRepo.cold[1].toFixed(1)} ms cpu`],
    ['sample repo render, warm cache (disk)', `${sampleRepo.warm[0].toFixed(1)} ms wall, ${sampleRepo.warm[1].toFixed(1)} ms cpu  (goal well under 100 ms)`],
    ['sample repo render, one file changed (cache, in memory)', `${sampleRepo.changed[0].toFixed(1)} ms wall, ${sampleRepo.changed[1].toFixed(1)} ms cpu`],
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
      buildValidateCpuMs: +(buildCpu + validateCpu).toFixed(1),
      scaling: scaling.map(([n, wall, cpu]) => ({ services: n, wallMs: +wall.toFixed(1), cpuMs: +cpu.toFixed(1) })),
      sampleRepo: Object.fromEntries(Object.entries(sampleRepo).map(([k, [wall, cpu]]) => [k, { wallMs: +wall.toFixed(1), cpuMs: +cpu.toFixed(1) }])),
      freezeOnceMs: +freezeMs.toFixed(1),
      copyPerUseMs: +copyMs.toFixed(1),
      loadAverageEnd: +loadAfter.toFixed(1),
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
