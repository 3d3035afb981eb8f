/**
 * GitOps loop costs, measured side by side in one run (`node --import tsx bench/gitops/main.ts [--quick]`):
 * - commit-to-applied latency by webhook and by poll: from the moment `git push` returned (the
 *   commit is on the server) to the operator's onApply callback (validated and rendered; what
 *   discovery does after that is measured by the discovery benchmark);
 * - the cost of a no-change poll: HTTP requests, bytes each way, CPU ms and wall ms.
 * Uses the project's sample config repository, a real git smart-HTTP server and the git CLI.
 */
import { execFile } from 'node:child_process';
import { appendFile, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { startGitHttpServer } from '../../src/reconciler/git-http-server.js';
import { GitSource } from '../../src/reconciler/git-source.js';
import { Operator } from '../../src/reconciler/operator.js';
import { signWebhookBody } from '../../src/reconciler/webhook.js';

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quick = process.argv.includes('--quick');
const WEBHOOK_RUNS = quick ? 8 : 30;
const POLL_RUNS = quick ? 4 : 10;
const POLL_INTERVAL_MS = quick ? 1_000 : 2_000;
const NOCHANGE_POLLS = quick ? 30 : 200;
const SECRET = 'bench-secret';
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@example.test',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@example.test',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};

const git = async (cwd: string, ...args: string[]): Promise<string> => (await execFileP('git', args, { cwd, env: GIT_ENV })).stdout.trim();

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
const r1 = (n: number) => Math.round(n * 10) / 10;

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
  const server = await startGitHttpServer({ root });
  const url = server.url('config.git');
  await git(work, 'remote', 'add', 'origin', url);
  await git(work, 'push', '--quiet', 'origin', 'main');

  let n = 0;
  const commitAndPush = async (): Promise<{ sha: string; pushMs: number }> => {
    n += 1;
    // A comment line: the commit stays valid and renders the same objects.
    await appendFile(join(work, 'trellis.yaml'), `# bench change ${n}\n`);
    await git(work, 'commit', '--quiet', '-am', `bench change ${n}`);
    const t = performance.now();
    await git(work, 'push', '--quiet', 'origin', 'main');
    return { sha: await git(work, 'rev-parse', 'HEAD'), pushMs: performance.now() - t };
  };

  const stepRuns: Array<Record<string, number>> = [];
  const waiters = new Map<string, (t: number) => void>();
  const appliedAt = (sha: string) => new Promise<number>((resolve) => waiters.set(sha, resolve));
  const makeOperator = (stateDir: string, schedule: { intervalMs: number } | { cron: string }) => {
    const op = new Operator({
      repo: url,
      stateDir,
      schedule,
      webhookSecret: SECRET,
      webhookDebounceMs: 0,
      leaderElection: 'none',
      logger: pino({ level: 'silent' }),
    });
    op.onApply((_render, rev) => {
      waiters.get(rev.commit)?.(performance.now());
    });
    op.onReconcile((r) => {
      if (r.result === 'applied') stepRuns.push(r.steps);
    });
    return op;
  };

  // ---- webhook -----------------------------------------------------------------------------
  const hookOp = makeOperator(join(tmp, 'state-hook'), { cron: '0 0 1 1 *' });
  const firstApply = appliedAt(await git(work, 'rev-parse', 'HEAD'));
  await hookOp.start();
  await firstApply;
  const webhook: number[] = [];
  const pushes: number[] = [];
  for (let i = 0; i < WEBHOOK_RUNS; i++) {
    const { sha, pushMs } = await commitAndPush();
    pushes.push(pushMs);
    const applied = appliedAt(sha);
    const t0 = performance.now();
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
    const res = await fetch(`${hookOp.url}/hooks/git`, { method: 'POST', body, headers: { 'x-hub-signature-256': signWebhookBody(body, SECRET) } });
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
    webhook.push((await applied) - t0);
    // Let the status commit for this apply land, so it does not compete with the next sample.
    await hookOp.publisher.flush();
  }
  await hookOp.stop();

  // ---- poll --------------------------------------------------------------------------------
  const pollOp = makeOperator(join(tmp, 'state-poll'), { intervalMs: POLL_INTERVAL_MS });
  const head = await git(work, 'rev-parse', 'HEAD');
  const firstPoll = appliedAt(head);
  await pollOp.start();
  await firstPoll;
  const poll: number[] = [];
  for (let i = 0; i < POLL_RUNS; i++) {
    // Push at a random phase of the poll interval, as real pushes arrive.
    await new Promise((r) => setTimeout(r, Math.random() * POLL_INTERVAL_MS));
    const { sha } = await commitAndPush();
    const t0 = performance.now();
    poll.push((await appliedAt(sha)) - t0);
    await pollOp.publisher.flush();
  }
  await pollOp.stop();

  // ---- no-change poll cost -----------------------------------------------------------------
  const source = new GitSource({ repo: url, cacheDir: join(tmp, 'state-cost') });
  await source.latest();
  const wire0 = { ...source.wire };
  server.resetStats();
  const cpu0 = process.cpuUsage();
  const wall: number[] = [];
  for (let i = 0; i < NOCHANGE_POLLS; i++) {
    const t = performance.now();
    const rev = await source.latest();
    wall.push(performance.now() - t);
    if (rev.fetched) throw new Error('a no-change poll fetched objects');
  }
  const cpu = process.cpuUsage(cpu0);
  const srv = server.stats();
  const perPoll = {
    requests: (source.wire.requests - wire0.requests) / NOCHANGE_POLLS,
    bytesIn: (source.wire.bytesIn - wire0.bytesIn) / NOCHANGE_POLLS,
    bytesOut: (source.wire.bytesOut - wire0.bytesOut) / NOCHANGE_POLLS,
    serverRequests: srv.requests / NOCHANGE_POLLS,
    posts: srv.posts / NOCHANGE_POLLS,
    // Client CPU (isomorphic-git + HTTP) plus the in-process CGI bridge; git http-backend runs in a child process.
    cpuMs: (cpu.user + cpu.system) / 1000 / NOCHANGE_POLLS,
    wallP50: pct(wall, 50),
    wallP95: pct(wall, 95),
  };
  await server.close();
  await rm(tmp, { recursive: true, force: true });

  const stepNames = ['detectChange', 'checkout', 'validateAndRender', 'handOver'];
  const stepP50 = Object.fromEntries(stepNames.map((n) => [n, r1(pct(stepRuns.map((s) => s[n] ?? 0), 50))]));
  const rows: Array<[string, string, string]> = [
    ['commit→applied by webhook p50', `${r1(pct(webhook, 50))} ms`, 'goal ≤ 300 ms (to proxy ACK)'],
    ['commit→applied by webhook p95', `${r1(pct(webhook, 95))} ms`, ''],
    ['  (git push itself, p50)', `${r1(pct(pushes, 50))} ms`, 'not counted above'],
    ...stepNames.map((n): [string, string, string] => [`  reconcile step ${n} p50`, `${stepP50[n]} ms`, n === 'detectChange' ? 'ls-refs + fetch' : n === 'validateAndRender' ? 'loadRepositoryFromDir (src/render)' : '']),
    [`commit→applied by poll (interval ${POLL_INTERVAL_MS} ms) p50`, `${r1(pct(poll, 50))} ms`, `goal ≤ interval + 300 = ${POLL_INTERVAL_MS + 300} ms`],
    ['commit→applied by poll max', `${r1(Math.max(...poll))} ms`, ''],
    ['no-change poll: HTTP requests', `${perPoll.requests}`, 'one GET /info/refs, no upload-pack'],
    ['no-change poll: pack POSTs', `${perPoll.posts}`, '0 = no object download'],
    ['no-change poll: bytes received', `${r1(perPoll.bytesIn)} B`, ''],
    ['no-change poll: bytes sent', `${r1(perPoll.bytesOut)} B`, ''],
    ['no-change poll: CPU (client + bridge)', `${r1(perPoll.cpuMs)} ms`, ''],
    ['no-change poll: wall p50 / p95', `${r1(perPoll.wallP50)} / ${r1(perPoll.wallP95)} ms`, ''],
    ['anchor: Argo CD default poll', '≈180 s', '120 s + ≤60 s jitter'],
    ['anchor: Flux GitRepository interval', 'user-set, 1 m typical', ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${cpus().length} cores (figures scale with it)`);
  console.log(`\nTrellis GitOps loop (${quick ? 'quick' : 'full'}: ${WEBHOOK_RUNS} webhook runs, ${POLL_RUNS} poll runs, ${NOCHANGE_POLLS} no-change polls; sample repo, loopback smart HTTP)\n`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
  console.log(
    JSON.stringify({
      bench: 'gitops',
      quick,
      loadavg_1m: Math.round(loadavg()[0]! * 10) / 10,
      webhook_p50_ms: r1(pct(webhook, 50)),
      webhook_p95_ms: r1(pct(webhook, 95)),
      poll_interval_ms: POLL_INTERVAL_MS,
      poll_p50_ms: r1(pct(poll, 50)),
      poll_max_ms: r1(Math.max(...poll)),
      nochange_poll_requests: perPoll.requests,
      nochange_poll_pack_posts: perPoll.posts,
      applied_step_p50_ms: stepP50,
      nochange_poll_bytes_in: r1(perPoll.bytesIn),
      nochange_poll_bytes_out: r1(perPoll.bytesOut),
      nochange_poll_cpu_ms: r1(perPoll.cpuMs),
      nochange_poll_wall_p50_ms: r1(perPoll.wallP50),
    }),
  );
}

await main();
