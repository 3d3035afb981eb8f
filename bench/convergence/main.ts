/**
 * bench/convergence: time from a configuration change in the operator to the last proxy ACK, for
 * 100, 1,000 and 2,000 connected proxies (simulated clients in child processes that really
 * reassemble each delta, check its content hash and validate the snapshot), with bytes pushed and
 * operator RSS; plus workload certificates per second when src/security's CA is present.
 *
 *   node --import tsx bench/convergence/main.ts [--quick] [--sizes 100,1000,2000] [--operator-node-flag FLAG]...
 *
 * Profiling: CONVERGENCE_CHANGE_CPU_PROF=file (operator CPU profile around the mesh-wide change),
 * CONVERGENCE_CLIENT_CHANGE_CPU_PROF=dir (each clients process's profile around the mesh-wide change),
 * CONVERGENCE_CLIENT_CPU_PROF=dir (clients' whole-run profiles), CONVERGENCE_CLIENT_NODE_FLAGS="flags" (node
 * flags of the client processes), CONVERGENCE_HEAP_SNAPSHOT=file (operator heap
 * once settled), CONVERGENCE_MEMORY_DEBUG=1 (operator memory by V8 space, on stderr).
 *
 * Each size runs in a fresh operator process (so RSS is that size's alone), whose clients live in
 * one or two further processes. Prints a table and, last, one line of JSON.
 */
import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryEvent, DiscoveryServer } from '../../src/discovery/server.js';
import type { ClientsCommand, ClientsReport, ClientsStart } from './clients.js';
import { startCpuProfile } from './profile.js';
import { BenchMesh, namespaceOfProxy } from './real-mesh.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const NAMESPACES = Array.from({ length: 10 }, (_, i) => `ns-${i}`);
const SERVICES_PER_NAMESPACE = 20;
const CONVERGE_TIMEOUT_MS = 120_000;
const COLD_START_TIMEOUT_MS = 600_000;

interface ChangeResult {
  /** configChanged() → last ACK (includes the 100 ms debounce). */
  ms: number;
  /** first push sent → last ACK. */
  pushMs: number;
  pushes: number;
  fullPushes: number;
  bytes: number;
  operatorCpuMs: number;
  /** CPU all simulated clients spent from the change to the last ACK (parse, reassemble, verify, validate). */
  clientCpuMs: number;
}

interface ScenarioResult {
  proxies: number;
  coldStartMs: number;
  meshWide: ChangeResult;
  scoped: ChangeResult;
  operatorRssMb: number;
  operatorPeakRssMb: number;
  operatorHeapMb: number;
  baselineRssMb: number;
  coldStartOperatorCpuMs: number;
  /** Snapshots pushed from the first connect until every proxy is SYNCED on the full registry, per proxy. */
  coldStartPushesPerProxy: number;
  coldStartBytes: number;
  clientCpuMs: number;
  clientSnapshots: number;
  clientRejected: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = CONVERGE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // status() builds a row per proxy: polled slowly, so the bench does not tax the operator it measures.
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(500);
  }
}

function request<T extends ClientsReport['type']>(child: ChildProcess, send: ClientsCommand, want: T): Promise<Extract<ClientsReport, { type: T }>> {
  return new Promise((resolve) => {
    const onMessage = (msg: ClientsReport) => {
      if (msg.type !== want) return;
      child.off('message', onMessage);
      resolve(msg as Extract<ClientsReport, { type: T }>);
    };
    child.on('message', onMessage);
    child.send(send);
  });
}

async function clientsCpuMs(children: ChildProcess[]): Promise<number> {
  let total = 0;
  for (const child of children) total += (await request(child, { type: 'counters' }, 'counters')).cpuMs;
  return total;
}

async function measureChange(server: DiscoveryServer, children: ChildProcess[], expected: number, change: () => void): Promise<ChangeResult> {
  const clientCpu0 = await clientsCpuMs(children);
  const lastPushed = new Map<string, string>();
  const acked = new Set<string>();
  let full = 0;
  let bytes = 0;
  let firstPushAt = 0;
  let lastAckAt = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const listener = (e: DiscoveryEvent) => {
    if (e.type === 'pushed') {
      if (firstPushAt === 0) firstPushAt = performance.now();
      lastPushed.set(e.proxyId, e.version);
      acked.delete(e.proxyId);
      bytes += e.bytes;
      if (e.base === null) full++;
    } else if (e.type === 'ack' && lastPushed.get(e.proxyId) === e.hash) {
      acked.add(e.proxyId);
      if (acked.size === expected && lastPushed.size === expected) {
        lastAckAt = performance.now();
        resolveDone();
      }
    }
  };
  server.events.on('event', listener);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  change();
  const timeout = setTimeout(() => resolveDone(), CONVERGE_TIMEOUT_MS);
  await done;
  clearTimeout(timeout);
  const cpu = process.cpuUsage(cpu0);
  server.events.off('event', listener);
  if (acked.size !== expected) throw new Error(`only ${acked.size} of ${expected} proxies acked within ${CONVERGE_TIMEOUT_MS} ms`);
  const clientCpuMs = (await clientsCpuMs(children)) - clientCpu0;
  return {
    clientCpuMs,
    ms: lastAckAt - t0,
    pushMs: lastAckAt - firstPushAt,
    pushes: lastPushed.size,
    fullPushes: full,
    bytes,
    operatorCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function runScenario(proxies: number): Promise<ScenarioResult> {
  const baselineRssMb = process.memoryUsage().rss / 1048576;
  const mesh = new BenchMesh({ namespaces: NAMESPACES, servicesPerNamespace: SERVICES_PER_NAMESPACE });
  const server = createDiscoveryServer({ render: mesh.render, staleAfterMs: 60_000, endpointGraceMs: 60_000 });
  const { url } = await server.listen(0);
  const processes = proxies >= 500 ? 2 : 1;
  const children: ChildProcess[] = [];
  let coldPushes = 0;
  let coldBytes = 0;
  const countColdPushes = (e: DiscoveryEvent) => {
    if (e.type !== 'pushed') return;
    coldPushes++;
    coldBytes += e.bytes;
  };
  server.events.on('event', countColdPushes);
  const t0 = performance.now();
  const coldCpu0 = process.cpuUsage();
  let first = 0;
  for (let p = 0; p < processes; p++) {
    const count = Math.floor(proxies / processes) + (p < proxies % processes ? 1 : 0);
    const profile = [
      ...(process.env.CONVERGENCE_CLIENT_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CONVERGENCE_CLIENT_CPU_PROF}`] : []),
      ...(process.env.CONVERGENCE_CLIENT_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    ];
    const bundled = join(HERE, 'clients.mjs');
    const child = existsSync(bundled)
      ? fork(bundled, [], { execArgv: profile, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      : fork(join(HERE, 'clients.ts'), [], { execArgv: [...profile, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const start: ClientsStart = { url, first, count, namespaces: NAMESPACES, servicesPerNamespace: SERVICES_PER_NAMESPACE };
    await request(child, { type: 'start', start }, 'started');
    first += count;
  }
  const allSynced = () => {
    const rows = server.status();
    return rows.length === proxies && rows.every((r) => r.sync === 'SYNCED');
  };
  await waitUntil(allSynced, `${proxies} proxies SYNCED`, COLD_START_TIMEOUT_MS);
  await server.flush();
  await waitUntil(allSynced, `${proxies} proxies SYNCED after registry pushes`, COLD_START_TIMEOUT_MS);
  const coldStartMs = performance.now() - t0;
  const coldCpu = process.cpuUsage(coldCpu0);
  server.events.off('event', countColdPushes);
  await sleep(300);

  const profile = process.env.CONVERGENCE_CHANGE_CPU_PROF ? await startCpuProfile() : null;
  const clientProfileDir = process.env.CONVERGENCE_CLIENT_CHANGE_CPU_PROF;
  if (clientProfileDir) for (const child of children) await request(child, { type: 'profile-start' }, 'profiling');
  const meshWide = await measureChange(server, children, proxies, () => {
    mesh.setTimeouts(NAMESPACES.map((namespace) => ({ namespace, name: 'svc-0' })), '2500ms');
    server.configChanged('VirtualService svc-0 in every namespace');
  });
  if (profile) writeFileSync(process.env.CONVERGENCE_CHANGE_CPU_PROF as string, JSON.stringify(await profile()));
  if (clientProfileDir) {
    for (const [n, child] of children.entries()) await request(child, { type: 'profile-stop', file: join(clientProfileDir, `clients-${proxies}-${n}.cpuprofile`) }, 'profiled');
  }
  await sleep(300);
  const inNs3 = Array.from({ length: proxies }, (_, i) => i).filter((i) => namespaceOfProxy(mesh.shape, i) === 'ns-3').length;
  const scoped = await measureChange(server, children, inNs3, () => {
    mesh.setTimeouts([{ namespace: 'ns-3', name: 'svc-1' }], '700ms');
    server.configChanged('VirtualService ns-3/svc-1');
  });
  // Settled memory: what the operator holds for this many proxies, not cold-start garbage.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  await sleep(200);
  const memory = process.memoryUsage();
  if (process.env.CONVERGENCE_HEAP_SNAPSHOT) (await import('node:v8')).writeHeapSnapshot(process.env.CONVERGENCE_HEAP_SNAPSHOT);
  if (process.env.CONVERGENCE_MEMORY_DEBUG) process.stderr.write(`memory ${JSON.stringify(Object.fromEntries(Object.entries(memory).map(([k, v]) => [k, Math.round(v / 1048576)])))} v8 ${JSON.stringify((await import('node:v8')).getHeapSpaceStatistics().map((sp) => [sp.space_name, Math.round(sp.space_size / 1048576), Math.round(sp.space_used_size / 1048576)]))}\n`);

  let clientSnapshots = 0;
  let clientRejected = 0;
  let clientCpuMs = 0;
  for (const child of children) {
    const c = await request(child, { type: 'counters' }, 'counters');
    clientSnapshots += c.snapshots;
    clientRejected += c.rejected;
    clientCpuMs += c.cpuMs;
  }
  await Promise.all(children.map((child) => new Promise((resolve) => {
    child.once('exit', resolve);
    child.send({ type: 'stop' });
  })));
  await server.close();
  return {
    proxies,
    coldStartMs,
    meshWide,
    scoped,
    operatorRssMb: memory.rss / 1048576,
    operatorHeapMb: memory.heapUsed / 1048576,
    operatorPeakRssMb: process.resourceUsage().maxRSS / 1024,
    baselineRssMb,
    coldStartOperatorCpuMs: (coldCpu.user + coldCpu.system) / 1000,
    coldStartPushesPerProxy: coldPushes / proxies,
    coldStartBytes: coldBytes,
    clientCpuMs,
    clientSnapshots,
    clientRejected,
  };
}

async function certificatesPerSecond(count: number): Promise<{ perSecond: number; issued: number } | { skipped: string }> {
  let caModule: { CertificateAuthority: { open(o: object): Promise<{ issueWorkloadCertificate(csr: string, id: object, ttl?: number): unknown }> } };
  let csrModule: { generateKeyAndCsr(id: object): Promise<{ csrPem: string }> };
  try {
    const caPath = '../../src/security/ca/certificate-authority.js';
    const csrPath = '../../src/security/ca/csr.js';
    caModule = await import(caPath);
    csrModule = await import(csrPath);
    if (typeof caModule.CertificateAuthority?.open !== 'function' || typeof csrModule.generateKeyAndCsr !== 'function') throw new Error('API not found');
  } catch (err) {
    return { skipped: `src/security CA not available: ${(err as Error).message}` };
  }
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-bench-ca-'));
  try {
    const ca = await caModule.CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
    // Keys are the proxies' cost, not the CA's: a few CSRs are reused (the CA takes only the public key).
    const csrs = await Promise.all([0, 1, 2, 3].map((i) => csrModule.generateKeyAndCsr({ trustDomain: 'cluster.local', namespace: 'bench', serviceAccount: `sa-${i}` })));
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      ca.issueWorkloadCertificate(csrs[i % csrs.length].csrPem, { trustDomain: 'cluster.local', namespace: 'bench', serviceAccount: `sa-${i % csrs.length}` });
    }
    const seconds = (performance.now() - t0) / 1000;
    return { perSecond: count / seconds, issued: count };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Extra node flags for the operator process (`--operator-node-flag --max-semi-space-size=4`, repeatable). */
function operatorNodeFlags(): string[] {
  const flags: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === '--operator-node-flag' && process.argv[i + 1]) flags.push(process.argv[i + 1]);
  });
  return flags;
}

/**
 * The operator side runs as plain JavaScript bundled by esbuild, as a built operator runs (the image
 * runs dist/, not tsx, whose loader alone holds ~30 MB); tsx is the fallback when bundling fails.
 */
let scenarioEntry: string[] = ['--import', 'tsx', fileURLToPath(import.meta.url)];
let bundleDir: string | undefined;
function bundleScenario(): void {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-convergence-'));
  const esbuild = join(HERE, '..', '..', 'node_modules', '.bin', 'esbuild');
  for (const [src, out] of [['main.ts', 'main.mjs'], ['clients.ts', 'clients.mjs']]) {
    const r = spawnSync(esbuild, [join(HERE, src), '--bundle', '--platform=node', '--format=esm', '--packages=external', `--outfile=${join(dir, out)}`, '--log-level=error']);
    if (r.status !== 0) {
      process.stderr.write(`esbuild bundle failed, running through tsx: ${r.stderr}\n`);
      rmSync(dir, { recursive: true, force: true });
      return;
    }
  }
  symlinkSync(join(HERE, '..', '..', 'node_modules'), join(dir, 'node_modules'));
  bundleDir = dir;
  scenarioEntry = [join(dir, 'main.mjs')];
}

function runInFreshProcess(proxies: number): Promise<ScenarioResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', ...operatorNodeFlags(), ...scenarioEntry, '--scenario', String(proxies)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as ScenarioResult);
      else reject(new Error(`scenario ${proxies} failed (exit ${code}): ${out.slice(-2000)}`));
    });
  });
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);

async function main(): Promise<void> {
  const scenario = arg('--scenario');
  if (scenario) {
    const result = await runScenario(Number(scenario));
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    return;
  }
  const quick = process.argv.includes('--quick');
  const sizes = (arg('--sizes') ?? (quick ? '100,300' : '100,1000,2000')).split(',').map(Number);
  const loadAtStart = loadavg()[0];
  const results: ScenarioResult[] = [];
  if (!process.argv.includes('--tsx')) bundleScenario();
  try {
    for (const size of sizes) {
      process.stderr.write(`convergence: ${size} proxies...\n`);
      results.push(await runInFreshProcess(size));
    }
  } finally {
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  }
  const loadAfterScenarios = loadavg()[0];
  process.stderr.write('convergence: certificate issuance...\n');
  const certs = await certificatesPerSecond(quick ? 300 : 2000);

  const header = [
    'proxies',
    'change→last ACK ms',
    'push→last ACK ms',
    'pushes (full)',
    'bytes pushed',
    'operator CPU ms',
    'clients CPU ms',
    'scoped change ms',
    'scoped pushes',
    'cold start s',
    'cold pushes/proxy',
    'RSS MB (peak)',
    'heap MB',
  ];
  const rows = results.map((r) => [
    String(r.proxies),
    fmt(r.meshWide.ms),
    fmt(r.meshWide.pushMs),
    `${r.meshWide.pushes} (${r.meshWide.fullPushes})`,
    String(r.meshWide.bytes),
    fmt(r.meshWide.operatorCpuMs),
    fmt(r.meshWide.clientCpuMs),
    fmt(r.scoped.ms),
    String(r.scoped.pushes),
    fmt(r.coldStartMs / 1000, 1),
    fmt(r.coldStartPushesPerProxy, 2),
    `${fmt(r.operatorRssMb)} (${fmt(r.operatorPeakRssMb)})`,
    fmt(r.operatorHeapMb),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const flags = operatorNodeFlags();
  console.log(
    `Discovery convergence: ${NAMESPACES.length} namespaces × ${SERVICES_PER_NAMESPACE} services (Sidecar egress scoped per namespace), the operator's real renderer, ` +
      `every proxy registers an endpoint; debounce 100 ms (10 ms leading edge) included. The operator runs alone in its process${flags.length > 0 ? ` (node ${flags.join(' ')})` : ''}; ` +
      `the simulated clients (real HTTP/2 discovery clients that reassemble, hash-check and validate every snapshot) run in ${sizes.some((n) => n >= 500) ? 'one or two further processes' : 'a further process'}: RSS and "operator CPU" are the operator's alone.`,
  );
  console.log(`operator process baseline RSS (${bundleDir !== undefined || !scenarioEntry.includes('tsx') ? 'node, bundled' : 'node + tsx'}, before the server starts): ${fmt(results[0]?.baselineRssMb ?? 0)} MB`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log('change: VirtualService svc-0 edited in every namespace (every proxy affected); scoped: one VirtualService in ns-3 (only ns-3 proxies affected).');
  console.log('CPU columns are CPU time from the change to the last ACK (less sensitive to machine load than wall times).');
  console.log('cold start: all proxies connect at once; pushes/proxy counts every snapshot sent until all are SYNCED on the full registry.');
  console.log(`machine load average (1 min): ${loadAtStart.toFixed(1)} at start, ${loadAfterScenarios.toFixed(1)} after the scenarios, on ${cpus().length} CPUs`);
  if ('perSecond' in certs) console.log(`CA: ${certs.issued} workload certificates in ${fmt(certs.issued / certs.perSecond, 2)} s = ${fmt(certs.perSecond)} certificates/s (goal ≥ 500)`);
  else console.log(`CA: ${certs.skipped}`);
  const at1000 = results.find((r) => r.proxies === 1000);
  if (at1000) {
    console.log(`goal 1,000 proxies converge ≤ 1000 ms: ${fmt(at1000.meshWide.ms)} ms ${at1000.meshWide.ms <= 1000 ? 'MET' : 'NOT MET'}; RSS ≤ 150 MB: ${fmt(at1000.operatorRssMb)} MB ${at1000.operatorRssMb <= 150 ? 'MET' : 'NOT MET'}`);
  }
  for (const r of results) if (r.clientRejected > 0) console.log(`WARNING: ${r.clientRejected} snapshots failed client validation at ${r.proxies} proxies`);
  console.log(
    JSON.stringify({
      bench: 'convergence',
      quick,
      operatorNodeFlags: flags,
      loadAverage: { start: Number(loadAtStart.toFixed(1)), afterScenarios: Number(loadAfterScenarios.toFixed(1)) },
      results: results.map((r) => ({
        proxies: r.proxies,
        convergeMs: Math.round(r.meshWide.ms),
        pushToLastAckMs: Math.round(r.meshWide.pushMs),
        bytesPushed: r.meshWide.bytes,
        changeOperatorCpuMs: Math.round(r.meshWide.operatorCpuMs),
        changeClientsCpuMs: Math.round(r.meshWide.clientCpuMs),
        scopedConvergeMs: Math.round(r.scoped.ms),
        scopedPushes: r.scoped.pushes,
        coldStartMs: Math.round(r.coldStartMs),
        coldStartPushesPerProxy: Number(r.coldStartPushesPerProxy.toFixed(2)),
        coldStartBytes: r.coldStartBytes,
        coldStartOperatorCpuMs: Math.round(r.coldStartOperatorCpuMs),
        operatorRssMb: Math.round(r.operatorRssMb),
        operatorHeapMb: Math.round(r.operatorHeapMb),
        operatorPeakRssMb: Math.round(r.operatorPeakRssMb),
        baselineRssMb: Math.round(r.baselineRssMb),
        clientCpuMsTotal: Math.round(r.clientCpuMs),
        clientRejected: r.clientRejected,
      })),
      certificatesPerSecond: 'perSecond' in certs ? Math.round(certs.perSecond) : null,
    }),
  );
}

await main();
