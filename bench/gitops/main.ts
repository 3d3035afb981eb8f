/**
 * GitOps loop costs, measured side by side in one run (`node --import tsx bench/gitops/main.ts [--quick]`):
 * - commit-to-applied latency as the issue defines it: from the start of `git push` (git CLI, real
 *   smart-HTTP server) to the moment the real control plane (Operator + rollout + discovery server,
 *   src/reconciler/control-plane.ts) has received the ACK of EVERY one of 100 proxies of the cluster
 *   for the snapshot the new commit produces. The proxies are real discovery clients (a child
 *   process, as real proxies live outside the operator) that verify the content hash and run the
 *   proxy's validation gate before they ACK. By webhook (sent when `git push` returns, as a git host
 *   does) and by poll, with a breakdown of where the time goes;
 * - the cost of a no-change poll: HTTP requests, bytes each way, CPU ms and wall ms.
 * The config repository is the project's sample, served by a real git smart-HTTP server in its own
 * process (a git host is not the operator's process); each commit changes the dev cluster's
 * ratings timeout, a route every sidecar of the cluster holds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { DiscoveryEvent } from '../../src/discovery/server.js';
import { ControlPlane } from '../../src/reconciler/control-plane.js';
import { GitSource } from '../../src/reconciler/git-source.js';
import type { ReconcileResult } from '../../src/reconciler/reconciler.js';
import type { Schedule } from '../../src/reconciler/schedule.js';
import { signWebhookBody } from '../../src/reconciler/webhook.js';
import { git } from './git-cli.js';
import type { GitServerCommand, GitServerReport } from './git-server.js';
import type { ProxiesReport, ProxiesStart } from './proxies.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const quick = process.argv.includes('--quick');
const PROXIES = 100;
/**
 * Real proxies verify their snapshots in parallel, each on its own CPU; here they share the
 * machine. Spread over as many processes as cores so their verification is not serialised on one
 * event loop (which made the last ACK wait for 99 others' hashing and schema checks).
 */
const PROXY_PROCESSES = Math.max(2, cpus().length);
const CLUSTER = 'dev';
const NAMESPACE = 'bookinfo';
const WEBHOOK_RUNS = quick ? 10 : 30;
const POLL_RUNS = quick ? 10 : 20;
const POLL_INTERVAL_MS = 1_000;
const WARMUP_RUNS = 3;
const NOCHANGE_POLLS = quick ? 30 : 200;
const SECRET = 'bench-secret';
const OVERLAY = 'kustomize/overlays/dev/kustomization.yaml';
function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
const r1 = (n: number) => Math.round(n * 10) / 10;

/** One commit's timeline, in ms from the start of `git push`. */
interface Run {
  total: number;
  push: number;
  /** git push returned → the reconcile started (webhook delivery + loop debounce, or waiting for the next poll). */
  trigger: number;
  fetch: number;
  checkout: number;
  render: number;
  /** Hand-over to the control plane: rollout + discovery notified. */
  handOver: number;
  /** Hand-over done → first snapshot pushed (discovery debounce + first proxy render). */
  debounce: number;
  /** First snapshot pushed → last ACK received (render, send, verify, validate, ACK for all 100). */
  pushToAck: number;
  /** Of which: first → last snapshot pushed (the operator renders and sends to all 100). */
  pushAll: number;
  /** Of which: last snapshot pushed → last ACK (the proxies verify, validate and ACK). */
  ackTail: number;
  /** CPU the 100 proxies spent on this commit (all processes together). */
  proxiesCpu: number;
  /** CPU of the control plane's process during the run (includes the bench's own git CLI spawns). */
  operatorCpu: number;
}

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(10);
  }
}

/** A child process driven over IPC: send a command, wait for the report of a given type. */
class IpcChild<Report extends { type: string }> {
  private readonly child: ChildProcess;

  constructor(script: string) {
    // GITOPS_BENCH_PROFILE=<dir>: CPU profiles of the child processes too.
    const profile = process.env.GITOPS_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.GITOPS_BENCH_PROFILE}`] : [];
    this.child = fork(join(HERE, script), [], { execArgv: [...profile, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  request<T extends Report['type']>(command: object, reply: T): Promise<Extract<Report, { type: T }>> {
    return new Promise((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`child process exited (${code}) before it answered ${reply}`));
      const on = (m: Report) => {
        if (m.type !== reply) return;
        this.child.off('message', on);
        this.child.off('exit', exited);
        resolve(m as Extract<Report, { type: T }>);
      };
      this.child.on('message', on);
      this.child.once('exit', exited);
      this.child.send(command);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'stop' });
    await exited;
  }
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'trellis-bench-gitops-'));
  const root = join(tmp, 'srv');
  const bare = join(root, 'config.git');
  const work = join(tmp, 'work');
  await mkdir(root, { recursive: true });
  await git(tmp, 'init', '--quiet', '--bare', '-b', 'main', bare);
  await git(tmp, 'init', '--quiet', '-b', 'main', work);
  for (const p of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(ROOT, p), join(work, p), { recursive: true });
  await git(work, 'add', '-A');
  await git(work, 'commit', '--quiet', '-m', 'sample config');
  const gitHost = new IpcChild<GitServerReport>('git-server.ts');
  const url = `${(await gitHost.request({ type: 'start', root } satisfies GitServerCommand, 'started')).baseUrl}/config.git`;
  await git(work, 'remote', 'add', 'origin', url);
  await git(work, 'push', '--quiet', 'origin', 'main');

  const overlay = await readFile(join(work, OVERLAY), 'utf8');
  if (!/path: \/spec\/http\/0\/timeout\n\s+value: 2s/.test(overlay)) throw new Error(`${OVERLAY}: the ratings timeout patch the bench edits is gone`);
  let n = 0;
  /** The developer (in the git process) commits a new ratings timeout for dev (every sidecar's route table changes) and pushes. */
  const commitAndPush = async (): Promise<{ sha: string; t0: number; t1: number }> => {
    n += 1;
    const content = overlay.replace(/(path: \/spec\/http\/0\/timeout\n\s+value: )2s/, `$1${2000 + n}ms`);
    const pushed = await gitHost.request({ type: 'commit-push', work, path: OVERLAY, content, message: `dev: ratings timeout ${2000 + n}ms` } satisfies GitServerCommand, 'pushed');
    // Wall-clock times from the git process, to this process's performance.now() scale.
    return { sha: pushed.sha, t0: pushed.pushStarted - performance.timeOrigin, t1: pushed.pushReturned - performance.timeOrigin };
  };

  /** Starts a control plane and its 100 proxies, measures `runs` commits, stops everything. */
  const measure = async (label: string, schedule: Schedule, runs: number, deliver: (cp: ControlPlane, sha: string) => Promise<void>, beforePush?: () => Promise<void>): Promise<{ runs: Run[]; rejected: number }> => {
    const plane = new ControlPlane({
      repo: url,
      stateDir: join(tmp, `state-${label}`),
      schedule,
      webhookSecret: SECRET,
      leaderElection: 'none',
      security: false,
      logger: pino({ level: 'silent' }),
    });
    const reconciles = new Map<string, { result: ReconcileResult; at: number }>();
    const handedOver = new Map<string, number>();
    plane.operator.onReconcile((r) => {
      if (r.commit && r.result === 'applied') reconciles.set(r.commit, { result: r, at: performance.now() });
    });
    // Subscribed after the control plane's own listener: called once it has handed the commit on.
    plane.operator.onApply((_render, rev) => {
      handedOver.set(rev.commit, performance.now());
    });
    const events: Array<{ e: DiscoveryEvent; t: number }> = [];
    plane.discovery.events.on('event', (e) => {
      if (e.type === 'pushed' || e.type === 'ack' || e.type === 'nack') events.push({ e, t: performance.now() });
    });
    await plane.start();
    await waitUntil(() => handedOver.size > 0, `${label}: first apply`);
    const per = Math.ceil(PROXIES / PROXY_PROCESSES);
    const fleet = Array.from({ length: PROXY_PROCESSES }, () => new IpcChild<ProxiesReport>('proxies.ts'));
    await Promise.all(
      fleet.map((child, k) =>
        child.request({ type: 'start', start: { url: plane.discoveryUrl, cluster: CLUSTER, namespace: NAMESPACE, first: k * per, count: Math.max(0, Math.min(per, PROXIES - k * per)) } satisfies ProxiesStart }, 'started'),
      ),
    );
    const proxiesCpu = async () => (await Promise.all(fleet.map((child) => child.request({ type: 'counters' }, 'counters')))).reduce((n, c) => n + c.cpuMs, 0);
    const mine = () => plane.discovery.status().filter((p) => p.cluster === CLUSTER);
    const allSynced = () => {
      const ps = mine();
      return ps.length === PROXIES && ps.every((p) => p.connected && p.ackedHash !== null && p.ackedHash === p.desiredHash);
    };
    await waitUntil(allSynced, `${label}: ${PROXIES} proxies connected and synced`);
    const out: Run[] = [];
    // The first commits warm the JIT and the render cache, as in a long-running operator; not counted.
    for (let i = 0; i < WARMUP_RUNS + runs; i++) {
      await plane.discovery.flush();
      await plane.operator.publisher.flush();
      await waitUntil(allSynced, `${label}: proxies synced before run ${i}`);
      const before = new Map(mine().map((p) => [p.id, p.ackedHash]));
      events.length = 0;
      await beforePush?.();
      const proxiesCpu0 = await proxiesCpu();
      const operatorCpu0 = process.cpuUsage();
      const { sha, t0, t1 } = await commitAndPush();
      await deliver(plane, sha);
      // Every proxy ACKs a snapshot other than the one it held: the commit reached all of them.
      const acked = new Map<string, number>();
      await waitUntil(() => {
        for (const { e, t } of events) {
          if (e.type === 'nack') throw new Error(`${label}: proxy ${e.proxyId} refused ${e.hash}: ${e.reason}`);
          if (e.type === 'ack' && e.hash !== before.get(e.proxyId) && !acked.has(e.proxyId)) acked.set(e.proxyId, t);
        }
        return acked.size === PROXIES && handedOver.has(sha) && reconciles.has(sha);
      }, `${label}: run ${i}: ${PROXIES} ACKs of commit ${sha.slice(0, 12)} (have ${acked.size})`);
      const lastAck = Math.max(...acked.values());
      const operatorCpu = process.cpuUsage(operatorCpu0);
      const proxiesCpuMs = (await proxiesCpu()) - proxiesCpu0;
      const pushTimes = events.filter(({ e, t }) => e.type === 'pushed' && t >= t0 && acked.has(e.proxyId)).map(({ t }) => t);
      const firstPush = Math.min(...pushTimes);
      const lastPush = Math.max(...pushTimes);
      const { result } = reconciles.get(sha)!;
      const s = result.steps;
      const handed = handedOver.get(sha)!;
      const reconcileStart = handed - (s.detectChange ?? 0) - (s.checkout ?? 0) - (s.validateAndRender ?? 0) - (s.handOver ?? 0);
      if (i < WARMUP_RUNS) continue;
      out.push({
        total: lastAck - t0,
        push: t1 - t0,
        trigger: reconcileStart - t1,
        fetch: s.detectChange ?? 0,
        checkout: s.checkout ?? 0,
        render: s.validateAndRender ?? 0,
        handOver: s.handOver ?? 0,
        debounce: firstPush - handed,
        pushToAck: lastAck - firstPush,
        pushAll: lastPush - firstPush,
        ackTail: lastAck - lastPush,
        proxiesCpu: proxiesCpuMs,
        operatorCpu: (operatorCpu.user + operatorCpu.system) / 1000,
      });
    }
    const counters = await Promise.all(fleet.map((child) => child.request({ type: 'counters' }, 'counters')));
    await Promise.all(fleet.map((child) => child.stop()));
    await plane.stop();
    return { runs: out, rejected: counters.reduce((n, c) => n + c.rejected, 0) };
  };

  const webhook = await measure('webhook', { cron: '0 0 1 1 *' }, WEBHOOK_RUNS, async (plane, sha) => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
    const res = await fetch(`${plane.operator.url}/hooks/git`, { method: 'POST', body, headers: { 'x-hub-signature-256': signWebhookBody(body, SECRET) } });
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
  });
  // Pushes arrive at a random phase of the poll interval, as real pushes do.
  const poll = await measure('poll', { intervalMs: POLL_INTERVAL_MS }, POLL_RUNS, async () => undefined, async () => { await wait(Math.random() * POLL_INTERVAL_MS); });

  // ---- no-change poll cost -----------------------------------------------------------------
  const source = new GitSource({ repo: url, cacheDir: join(tmp, 'state-cost') });
  await source.latest();
  const wire0 = { ...source.wire };
  await gitHost.request({ type: 'reset' } satisfies GitServerCommand, 'reset');
  const cpu0 = process.cpuUsage();
  const wall: number[] = [];
  for (let i = 0; i < NOCHANGE_POLLS; i++) {
    const t = performance.now();
    const rev = await source.latest();
    wall.push(performance.now() - t);
    if (rev.fetched) throw new Error('a no-change poll fetched objects');
  }
  const cpu = process.cpuUsage(cpu0);
  const srv = (await gitHost.request({ type: 'stats' } satisfies GitServerCommand, 'stats')).stats;
  const perPoll = {
    requests: (source.wire.requests - wire0.requests) / NOCHANGE_POLLS,
    bytesIn: (source.wire.bytesIn - wire0.bytesIn) / NOCHANGE_POLLS,
    bytesOut: (source.wire.bytesOut - wire0.bytesOut) / NOCHANGE_POLLS,
    posts: srv.posts / NOCHANGE_POLLS,
    // The operator side only (isomorphic-git + HTTP); the git host runs in its own process.
    cpuMs: (cpu.user + cpu.system) / 1000 / NOCHANGE_POLLS,
    wallP50: pct(wall, 50),
    wallP95: pct(wall, 95),
  };
  await gitHost.stop();
  await rm(tmp, { recursive: true, force: true });

  const parts: Array<[keyof Run, string]> = [
    ['push', 'git push (CLI, smart HTTP)'],
    ['trigger', 'push returned → reconcile starts'],
    ['fetch', 'detect change + fetch (isomorphic-git)'],
    ['checkout', 'checkout snapshot'],
    ['render', 'validate + render whole repo'],
    ['handOver', 'hand over (rollout, discovery notified)'],
    ['debounce', 'discovery debounce + first render'],
    ['pushToAck', `first push → last of ${PROXIES} ACKs`],
    ['pushAll', `  of which operator sends all ${PROXIES}`],
    ['ackTail', '  of which last push → last ACK'],
    ['proxiesCpu', `CPU of the ${PROXIES} proxies per commit`],
    ['operatorCpu', 'CPU of the operator process per commit'],
  ];
  const p50 = (runs: Run[], k: keyof Run) => r1(pct(runs.map((r) => r[k]), 50));
  const rows: Array<[string, string, string, string]> = [
    ['', 'webhook', `poll (${POLL_INTERVAL_MS} ms)`, ''],
    [`push → all ${PROXIES} proxies ACK, p50`, `${p50(webhook.runs, 'total')} ms`, `${p50(poll.runs, 'total')} ms`, `goal ≤ 300 ms / ≤ ${POLL_INTERVAL_MS + 300} ms`],
    [`push → all ${PROXIES} proxies ACK, p95`, `${r1(pct(webhook.runs.map((r) => r.total), 95))} ms`, `${r1(pct(poll.runs.map((r) => r.total), 95))} ms`, ''],
    ['push → all ACK, max', `${r1(Math.max(...webhook.runs.map((r) => r.total)))} ms`, `${r1(Math.max(...poll.runs.map((r) => r.total)))} ms`, ''],
    ...parts.map(([k, what]): [string, string, string, string] => [`  p50 ${what}`, `${p50(webhook.runs, k)} ms`, `${p50(poll.runs, k)} ms`, '']),
    ['snapshots refused by proxies', `${webhook.rejected}`, `${poll.rejected}`, 'must be 0'],
  ];
  const costRows: Array<[string, string, string]> = [
    ['no-change poll: HTTP requests', `${perPoll.requests}`, 'one GET /info/refs, no upload-pack'],
    ['no-change poll: pack POSTs', `${perPoll.posts}`, '0 = no object download'],
    ['no-change poll: bytes received / sent', `${r1(perPoll.bytesIn)} / ${r1(perPoll.bytesOut)} B`, ''],
    ['no-change poll: operator CPU', `${r1(perPoll.cpuMs)} ms`, ''],
    ['no-change poll: wall p50 / p95', `${r1(perPoll.wallP50)} / ${r1(perPoll.wallP95)} ms`, ''],
    ['anchor: Argo CD default poll', '≈180 s', 'timeout.reconciliation 120 s + up to 60 s jitter'],
    ['anchor: Flux GitRepository interval', 'user-set', '1 m typical'],
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores (figures scale with it)`);
  console.log(
    `\nTrellis GitOps loop (${quick ? 'quick' : 'full'}: ${WEBHOOK_RUNS} webhook commits, ${POLL_RUNS} poll commits, ${PROXIES} proxies in cluster ${CLUSTER} over ${PROXY_PROCESSES} processes, ${NOCHANGE_POLLS} no-change polls; sample repo, loopback smart HTTP)\n`,
  );
  for (const [a, b, c, d] of rows) console.log(`${a.padEnd(w[0]!)}  ${b.padStart(w[1]!)}  ${c.padStart(w[2]!)}  ${d}`);
  console.log('');
  const v0 = Math.max(...costRows.map((r) => r[0].length));
  const v1 = Math.max(...costRows.map((r) => r[1].length));
  for (const [a, b, c] of costRows) console.log(`${a.padEnd(v0)}  ${b.padStart(v1)}  ${c}`);
  const breakdown = (runs: Run[]) => Object.fromEntries(parts.map(([k]) => [k, p50(runs, k)]));
  console.log(
    JSON.stringify({
      bench: 'gitops',
      quick,
      loadavg_1m: r1(loadavg()[0]!),
      proxies: PROXIES,
      proxy_processes: PROXY_PROCESSES,
      webhook_p50_ms: p50(webhook.runs, 'total'),
      webhook_p95_ms: r1(pct(webhook.runs.map((r) => r.total), 95)),
      poll_interval_ms: POLL_INTERVAL_MS,
      poll_p50_ms: p50(poll.runs, 'total'),
      poll_p95_ms: r1(pct(poll.runs.map((r) => r.total), 95)),
      webhook_breakdown_p50_ms: breakdown(webhook.runs),
      poll_breakdown_p50_ms: breakdown(poll.runs),
      refused: webhook.rejected + poll.rejected,
      nochange_poll_requests: perPoll.requests,
      nochange_poll_pack_posts: perPoll.posts,
      nochange_poll_bytes_in: r1(perPoll.bytesIn),
      nochange_poll_bytes_out: r1(perPoll.bytesOut),
      nochange_poll_cpu_ms: r1(perPoll.cpuMs),
      nochange_poll_wall_p50_ms: r1(perPoll.wallP50),
    }),
  );
}

await main();
