/**
 * Data-plane bench: direct vs the Trellis proxy (simple route, realistic route) vs node http-proxy
 * vs nginx (when installed), side by side in one run, with wrk (when installed; autocannon
 * otherwise) in a child process. Prints req/s and ratios at 50 connections, p99 at 10 connections
 * both at saturation (closed loop, wrk c10) and at a fixed rate (open loop, open-loop.ts: Istio's
 * method, corrected for coordinated omission), the proxy's peak RSS, and a hot-reconfiguration run
 * (snapshot rewrites under load).
 *
 *   node --import tsx bench/proxy/main.ts [--quick] [--autocannon] [--rate N] [--latency-only]
 *
 *   --rate N          total requests/s of the fixed-rate run over its 10 connections (default 1000)
 *   --latency-only    only the fixed-rate latency runs (no c50, saturated c10 or hot reconfiguration)
 *   --parallel-gc     run the Trellis proxies with V8's default parallel GC (the bench otherwise
 *                     calls useSingleThreadedGc(), src/proxy/gc-tuning.ts, as recommended)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import { makeSnapshot } from './snapshots.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const quick = process.argv.includes('--quick');
const DURATION = quick ? 4 : 8;
const ROUNDS = quick ? 1 : 3;
const latencyOnly = process.argv.includes('--latency-only');
function numberFlag(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(v > 0)) throw new Error(`${name} needs a positive number`);
  return v;
}
/** The fixed-rate run: total requests/s over FIXED_CONNECTIONS connections, as Istio measures added latency. */
const FIXED_RATE = numberFlag('--rate', 1000);
const FIXED_CONNECTIONS = 10;
const FIXED_SECONDS = quick ? 3 : 5;
const parallelGc = process.argv.includes('--parallel-gc');
const children: ChildProcess[] = [];
/**
 * V8 flags the Trellis proxy runs with: a 2 MB semi-space keeps the young generation from growing
 * to 3 × 16 MB under load (peak RSS −10 MB); the proxy allocates little per request, so the extra
 * scavenges cost little. Recommended for `trellis proxy` deployments (NODE_OPTIONS).
 */
const PROXY_NODE_FLAGS = ['--max-semi-space-size=2'];

function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/**
 * The servers run as plain JavaScript bundled by esbuild (as a built proxy runs), not through tsx,
 * whose loader would inflate RSS and startup; tsx is the fallback when esbuild is unavailable.
 */
let serveEntry: string[] = ['--import', 'tsx', join(HERE, 'serve.ts')];
let openLoopEntry: string[] = ['--import', 'tsx', join(HERE, 'open-loop.ts')];
function bundleServe(dir: string): void {
  const esbuild = join(ROOT, 'node_modules', '.bin', 'esbuild');
  const bundle = (name: string): string | undefined => {
    const out = join(dir, `${name}.mjs`);
    const r = spawnSync(esbuild, [join(HERE, `${name}.ts`), '--bundle', '--platform=node', '--format=esm', '--packages=external', `--outfile=${out}`, '--log-level=error']);
    if (r.status === 0) return out;
    console.error(`esbuild bundle of ${name} failed, running it through tsx: ${r.stderr}`);
    return undefined;
  };
  const serveOut = bundle('serve');
  const openLoopOut = bundle('open-loop');
  // Bare imports resolve from the bundle's directory: give it the project's node_modules.
  if (serveOut || openLoopOut) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  if (serveOut) serveEntry = [serveOut];
  if (openLoopOut) openLoopEntry = [openLoopOut];
}

async function serve(kind: string, arg?: string): Promise<{ port: number; pid: number }> {
  const flags = kind === 'trellis' ? PROXY_NODE_FLAGS : [];
  const env = { ...process.env, TRELLIS_BENCH_GC: parallelGc ? 'parallel' : 'single' };
  const child = spawn(process.execPath, [...flags, ...serveEntry, kind, ...(arg ? [arg] : [])], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
  return { port: JSON.parse(line).port, pid: child.pid! };
}

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

function haveWrk(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}
const useWrk = !process.argv.includes('--autocannon') && haveWrk();

/** Runs the load generator in a child process so it never shares the proxy's event loop. */
function load(port: number, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  return useWrk ? loadWrk(port, connections, seconds, headers) : loadAutocannon(port, connections, seconds, headers);
}

/** wrk's latency unit suffixes, to milliseconds. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

function loadWrk(port: number, connections: number, seconds: number, headers: Record<string, string>): Promise<LoadResult> {
  // `Host` capitalised: wrk adds its own unless it sees exactly that name (two Host headers are a 400).
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', 'Host: svc'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(`http://127.0.0.1:${port}/`);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', () => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const p50 = /^\s+50%\s+(\S+)/m.exec(out);
      const p99 = /^\s+99%\s+(\S+)/m.exec(out);
      const total = /(\d+) requests in/.exec(out);
      if (!rps || !p99 || !p50 || !total) return reject(new Error(`unexpected wrk output: ${out}`));
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
      resolve({
        rps: Number(rps[1]),
        p50: wrkMs(p50[1]),
        p99: wrkMs(p99[1]),
        errors: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0,
        non2xx: non2xx ? Number(non2xx[1]) : 0,
        total: Number(total[1]),
      });
    });
  });
}

function loadAutocannon(port: number, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  const args = [join(ROOT, 'node_modules', 'autocannon', 'autocannon.js'), '-j', '-c', String(connections), '-d', String(seconds), '-H', 'host=svc'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(`http://127.0.0.1:${port}/`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', () => {
      try {
        const j = JSON.parse(out);
        resolve({ rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, errors: j.errors + j.timeouts, non2xx: j.non2xx, total: j.requests.total });
      } catch (err) {
        reject(err);
      }
    });
  });
}

interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}
interface FixedRateResult {
  requests: number;
  achievedRate: number;
  unfinished: number;
  errors: number;
  non2xx: number;
  /** Latency corrected for coordinated omission (open-loop.ts says how). */
  corrected: Percentiles;
  /** Send-to-answer time, as a closed-loop tool would report it. */
  service: Percentiles;
  /** How late the generator's own timers sent (the schedule's accuracy, not the target's). */
  timerLag: Percentiles;
  /** The target process's run-queue wait per request during the run, µs (set by main). */
  waitUs?: number;
}

/** Open-loop latency at a fixed rate (open-loop.ts), in its own child process. */
function fixedRate(port: number, headers: Record<string, string> = {}): Promise<FixedRateResult> {
  const args = [...openLoopEntry, '--port', String(port), '--connections', String(FIXED_CONNECTIONS), '--rate', String(FIXED_RATE), '--seconds', String(FIXED_SECONDS), '--warmup', '1'];
  for (const [k, v] of Object.entries(headers)) args.push('--header', `${k}: ${v}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as FixedRateResult);
      } catch {
        reject(new Error(`open-loop exited with ${code}: ${out}`));
      }
    });
  });
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(/\d+/.exec(status.split('\n').find((l) => l.startsWith(key)) ?? '0')![0]);
  return { rss: kb('VmRSS:') / 1024, peak: kb('VmHWM:') / 1024 };
}

/** nginx with one worker and a keep-alive upstream, when installed (untested here: nginx is absent on these machines). */
/**
 * CPU seconds (user + system) a process and its direct children (nginx's worker) have used.
 * CPU per request is the figure contention does not skew: requests/s on a shared machine
 * depend on what else runs, the CPU each request costs the proxy much less.
 */
function cpuSeconds(pid: number): number {
  const ticks = (p: number): number => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      return 0;
    }
  };
  let total = ticks(pid);
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += ticks(Number(child));
  } catch {
    // no children file: the process alone
  }
  return total / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/**
 * Seconds a process's main thread (and its children's: nginx's worker) spent runnable but waiting
 * for a CPU (/proc/PID/schedstat, second field). Per request it says how much of a target's
 * latency was the machine's doing: on a quiet machine it is near 0.
 */
function runQueueWaitSeconds(pid: number): number {
  const wait = (p: number): number => {
    try {
      return Number(readFileSync(`/proc/${p}/schedstat`, 'utf8').split(' ')[1]) / 1e9 || 0;
    } catch {
      return 0;
    }
  };
  let total = wait(pid);
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += wait(Number(child));
  } catch {
    // no children file: the process alone
  }
  return total;
}

async function startNginx(dir: string, upstreamPort: number): Promise<{ port: number; pid: number }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;\npid ${join(dir, 'nginx.pid')};\nerror_log ${join(dir, 'nginx-error.log')};\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log off;\n  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }\n` +
      `  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n}\n`,
  );
  const child = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 100; i++) {
    const probe = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/`]);
    if (probe.stdout?.toString() === '200') return { port, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not start');
}

function writeAtomic(file: string, s: ProxySnapshot): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(s));
  renameSync(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
  try {
    bundleServe(dir);
    const upstream = await serve('upstream');
    const simpleFile = join(dir, 'simple.json');
    const realisticFile = join(dir, 'realistic.json');
    writeAtomic(simpleFile, makeSnapshot(upstream.port, false));
    writeAtomic(realisticFile, makeSnapshot(upstream.port, true));
    const trellisSimple = await serve('trellis', simpleFile);
    const trellisRealistic = await serve('trellis', realisticFile);
    const httpProxy = await serve('http-proxy', String(upstream.port));
    const targets: Array<{ name: string; port: number; pid?: number }> = [
      { name: 'direct', port: upstream.port, pid: upstream.pid },
      { name: 'trellis simple route', port: trellisSimple.port, pid: trellisSimple.pid },
      { name: 'trellis realistic route', port: trellisRealistic.port, pid: trellisRealistic.pid },
      { name: 'http-proxy (node)', port: httpProxy.port, pid: httpProxy.pid },
    ];
    const nginx = spawnSync('nginx', ['-v']).error === undefined;
    if (nginx) {
      const n = await startNginx(dir, upstream.port);
      targets.push({ name: 'nginx (1 worker)', port: n.port, pid: n.pid });
    }
    if (!nginx) console.error('note: nginx is not installed: its column is skipped (apt-get install nginx to compare)');
    // Targets run interleaved, ROUNDS times, keeping each one's best figures: on a shared machine the
    // load from other processes varies, and the best of interleaved rounds compares like with like.
    const rows = targets.map((t) => ({ name: t.name, rps: 0, p99c10: Infinity, rss: undefined as number | undefined, errors: 0, cpuUs: Infinity, fixed: [] as FixedRateResult[], fixedCpuUs: [] as number[] }));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, t] of targets.entries()) {
        const row = rows[i];
        if (!latencyOnly) {
          await load(t.port, 10, 1); // warm-up
          const cpuBefore = t.pid ? cpuSeconds(t.pid) : 0;
          const tput = await load(t.port, 50, DURATION);
          const cpuUsed = t.pid ? cpuSeconds(t.pid) - cpuBefore : 0;
          const lat = await load(t.port, 10, Math.max(3, DURATION / 2));
          row.rps = Math.max(row.rps, tput.rps);
          // The direct row's process is the upstream itself; a proxy row's process is the proxy alone.
          if (t.pid && tput.total > 0) row.cpuUs = Math.min(row.cpuUs, (cpuUsed * 1e6) / tput.total);
          row.p99c10 = Math.min(row.p99c10, lat.p99);
          row.errors += tput.errors + tput.non2xx + lat.errors + lat.non2xx;
        }
        // Alone, the fixed-rate run's 1 s warm-up (1,000 requests) leaves a fresh proxy's JIT cold: warm it as the full run does.
        if (latencyOnly && round === 0) await load(t.port, 10, 2);
        const fixedCpuBefore = t.pid ? cpuSeconds(t.pid) : 0;
        const fixedWaitBefore = t.pid ? runQueueWaitSeconds(t.pid) : 0;
        const fixed = await fixedRate(t.port); // its first second is a warm-up, not measured
        // CPU and run-queue wait per request at the fixed rate, warm-up included (requests sent = rate × (1 + seconds)).
        const sent = FIXED_RATE * (1 + FIXED_SECONDS);
        if (t.pid) row.fixedCpuUs.push(((cpuSeconds(t.pid) - fixedCpuBefore) * 1e6) / sent);
        if (t.pid) fixed.waitUs = ((runQueueWaitSeconds(t.pid) - fixedWaitBefore) * 1e6) / sent;
        row.fixed.push(fixed);
        row.errors += fixed.errors + fixed.non2xx + fixed.unfinished;
        if (t.pid && i > 0 && !t.name.startsWith('nginx')) row.rss = rssMb(t.pid).peak;
      }
    }
    // The fixed-rate figures are each target's median round (by p99), not its best.
    const fixedOf = (r: (typeof rows)[number]): FixedRateResult => [...r.fixed].sort((a, b) => a.corrected.p99 - b.corrected.p99)[Math.floor((r.fixed.length - 1) / 2)];
    let hot = { total: 0, errors: 0, non2xx: 0 };
    let hotSeconds = 0;
    let changes = 0;
    if (!latencyOnly) {
      // Hot reconfiguration under load: rewrite the realistic snapshot 100 times during a c50 run.
      const reconfig = load(trellisRealistic.port, 50, DURATION);
      const started = Date.now();
      while (changes < 100) {
        await new Promise((r) => setTimeout(r, (DURATION * 1000 * 0.8) / 100));
        writeAtomic(realisticFile, makeSnapshot(upstream.port, true, ++changes));
      }
      hot = await reconfig;
      hotSeconds = (Date.now() - started) / 1000;
    }

    const direct = rows[0];
    const hp = rows.find((r) => r.name.startsWith('http-proxy'))!;
    const pad = (s: string, n: number): string => s.padEnd(n);
    const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
    const loadGen = useWrk ? 'wrk -t1' : 'autocannon';
    const loadAvg = loadavg().map((l) => l.toFixed(1)).join(' ');
    if (!latencyOnly) {
      console.log(`\nTrellis proxy bench (${quick ? 'quick' : 'full'}; best of ${ROUNDS} interleaved rounds; ${loadGen} c50 ${DURATION}s for req/s; 2-byte body, keep-alive; nginx ${nginx ? 'present' : 'not installed'}; proxy node flags ${PROXY_NODE_FLAGS.join(' ')}, GC pauses ${parallelGc ? 'parallel (V8 default)' : 'single-threaded'}; load average ${loadAvg})`);
      console.log(`"p99 sat." = p99 at SATURATION: ${loadGen} c10 closed loop, as fast as the target answers (mostly queueing on 2 shared cores)\n`);
      console.log(`${pad('target', 26)}${pad('req/s', 10)}${pad('% direct', 10)}${pad('x http-proxy', 14)}${pad('p99 sat. ms', 13)}${pad('added', 9)}${pad('peak RSS MB', 13)}${pad('CPU µs/req', 12)}errors`);
      for (const r of rows) {
        console.log(
          `${pad(r.name, 26)}${pad(r.rps.toFixed(0), 10)}${pad(((r.rps / direct.rps) * 100).toFixed(1), 10)}${pad((r.rps / hp.rps).toFixed(2), 14)}${pad(f2(r.p99c10), 13)}${pad(f2(r.p99c10 - direct.p99c10), 9)}${pad(r.rss ? r.rss.toFixed(1) : '-', 13)}${pad(Number.isFinite(r.cpuUs) ? r.cpuUs.toFixed(0) : '-', 12)}${r.errors}`,
        );
      }
    }
    const d = fixedOf(direct).corrected;
    console.log(`\nFIXED RATE (open loop, Istio's method): ${FIXED_RATE} req/s over ${FIXED_CONNECTIONS} connections, ${FIXED_SECONDS} s after a 1 s warm-up, latency from the scheduled send (coordinated omission corrected), all samples, exact percentiles; median of ${ROUNDS} round(s) by p99; Trellis GC pauses ${parallelGc ? 'parallel (V8 default)' : 'single-threaded'}; load average ${loadAvg}\n`);
    console.log(`${pad('target', 26)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('p99.9 ms', 10)}${pad('max ms', 9)}${pad('added p50', 11)}${pad('added p99', 11)}${pad('rate', 7)}${pad('CPU µs/req', 12)}${pad('wait µs/req', 13)}${pad('gen. lag p99', 14)}errors`);
    for (const r of rows) {
      const f = fixedOf(r);
      const c = f.corrected;
      console.log(
        `${pad(r.name, 26)}${pad(f2(c.p50), 9)}${pad(f2(c.p99), 9)}${pad(f2(c.p999), 10)}${pad(f2(c.max), 9)}${pad(f2(c.p50 - d.p50), 11)}${pad(f2(c.p99 - d.p99), 11)}${pad(String(f.achievedRate), 7)}${pad(r.fixedCpuUs.length ? Math.min(...r.fixedCpuUs).toFixed(0) : '-', 12)}${pad(f.waitUs !== undefined ? f.waitUs.toFixed(0) : '-', 13)}${pad(f2(f.timerLag.p99), 14)}${f.errors + f.non2xx + f.unfinished}`,
      );
    }
    if (!latencyOnly) console.log(`\nhot reconfiguration: ${changes} snapshot rewrites in ${hotSeconds.toFixed(1)} s under c50: ${hot.total} requests, ${hot.errors} errors, ${hot.non2xx} non-2xx`);
    const realistic = rows[2];
    console.log(
      JSON.stringify({
        bench: 'proxy',
        quick,
        directRps: Math.round(direct.rps),
        trellisSimpleRps: Math.round(rows[1].rps),
        trellisRealisticRps: Math.round(realistic.rps),
        httpProxyRps: Math.round(hp.rps),
        realisticVsHttpProxy: Number((realistic.rps / hp.rps).toFixed(2)),
        realisticPctOfDirect: Number(((realistic.rps / direct.rps) * 100).toFixed(1)),
        addedP99MsC10Saturated: latencyOnly ? null : Number((realistic.p99c10 - direct.p99c10).toFixed(2)),
        fixedRate: { rate: FIXED_RATE, connections: FIXED_CONNECTIONS, seconds: FIXED_SECONDS },
        addedP99MsFixedRate: Number((fixedOf(realistic).corrected.p99 - d.p99).toFixed(2)),
        addedP99MsFixedRateSimple: Number((fixedOf(rows[1]).corrected.p99 - d.p99).toFixed(2)),
        cpuUsPerRequestFixedRate: Object.fromEntries(rows.map((r) => [r.name, r.fixedCpuUs.length ? Math.round(Math.min(...r.fixedCpuUs)) : null])),
        fixedRateMs: Object.fromEntries(rows.map((r) => [r.name, (({ p50, p99, p999 }) => ({ p50, p99, p999 }))(fixedOf(r).corrected)])),
        peakRssMb: Number((realistic.rss ?? 0).toFixed(1)),
        cpuUsPerRequest: Object.fromEntries(rows.map((r) => [r.name, Number.isFinite(r.cpuUs) ? Math.round(r.cpuUs) : null])),
        loadGenerator: loadGen,
        trellisGc: parallelGc ? 'parallel' : 'single-threaded',
        loadAverage: Number(loadavg()[0].toFixed(1)),
        nginx: nginx ? 'present' : 'absent',
        ...(nginx ? { nginxRps: Math.round(rows[4].rps), realisticVsNginx: Number((realistic.rps / rows[4].rps).toFixed(2)) } : {}),
        hotReconfig: { changes, requests: hot.total, errors: hot.errors, non2xx: hot.non2xx },
      }),
    );
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
