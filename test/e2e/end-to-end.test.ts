import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import type { DemoResult } from '../../src/demo/run-demo.js';
import { DemoConfigRepo } from '../../src/demo/config-repo.js';
import { startLoad, type LoadGenerator } from '../../src/demo/load.js';
import { startChild, type Child } from '../../src/demo/processes.js';
import { startGitHttpServer, type GitHttpServer } from '../../src/reconciler/git-http-server.js';
import type { RolloutStateFile } from '../../src/reconciler/rollout/state-store.js';
import type { ClusterRolloutView, RolloutStatusView } from '../../src/reconciler/rollout/view.js';
import type { ProxyConfigResponse } from '../../src/discovery/debug-api.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

/**
 * Cluster indexes 10–12 keep these clusters' loopback addresses (127.77.<index>.*) apart from the
 * demo's (0–3), whose test may run at the same time in another jest worker.
 *
 * Operators as real child processes against a real smart-HTTP git server, with demo clusters
 * (bookinfo behind Trellis proxies) as real child processes and real load.
 */
const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');
const SECRET = 'e2e-secret';
let root: string;
let git: GitHttpServer;
let repo: DemoConfigRepo;
const children: Child[] = [];
const loads: LoadGenerator[] = [];

/**
 * A free port below the ephemeral range (32768+), so no client socket of a concurrent test takes it
 * between the moment it is picked and the moment an operator (or a restarted one) binds it.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const server = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    }
  }
}

function operator(name: string, opts: { stateDir: string; port: number; discoveryPort: number; clusters: string }): Child {
  const child = startChild(name, TRELLIS, [
    'operator', '--repo', git.url('config.git'), '--branch', 'main', '--interval', '1s', '--state-dir', opts.stateDir,
    '--host', '127.0.0.1', '--port', String(opts.port), '--discovery-host', '127.0.0.1', '--discovery-port', String(opts.discoveryPort),
    '--rollout-tick', '200ms', '--clusters', opts.clusters, '--leader-election', 'none', '--webhook-secret-file', join(root, 'secret'),
    // These clusters run without workload certificates (the demo test covers bootstrap + mTLS discovery).
    '--no-discovery-mtls',
  ], join(root, `${name}.log`));
  children.push(child);
  return child;
}

async function cluster(name: string, index: number, discoveryPort: number): Promise<string> {
  const child = startChild(name, TRELLIS, ['demo-cluster', '--cluster', name, '--index', String(index), '--discovery', `http://127.0.0.1:${discoveryPort}`, '--state-dir', join(root, name)], join(root, `${name}.log`));
  children.push(child);
  return String((await child.waitFor('cluster ready', 120_000)).gatewayUrl);
}

async function rollout(port: number): Promise<RolloutStatusView | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v1/rollout`, { signal: AbortSignal.timeout(3000) });
    const view = res.ok ? ((await res.json()) as RolloutStatusView) : undefined;
    if (view) lastSeen = view.stages.flatMap((st) => st.clusters).map((c) => ({ cluster: c.cluster, phase: c.phase, step: c.step, message: c.message, proxies: c.proxies }));
    return view;
  } catch {
    return undefined;
  }
}

function clusterView(v: RolloutStatusView | undefined, name: string): ClusterRolloutView | undefined {
  return v?.stages.flatMap((s) => s.clusters).find((c) => c.cluster === name);
}

let lastSeen: unknown;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last rollout view: ${JSON.stringify(lastSeen)}`);
    await delay(200);
  }
}

describe('operators', () => {
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'trellis-ops-'));
    await writeFile(join(root, 'secret'), SECRET);
    await DemoConfigRepo.create({ sampleRoot: PROJECT_ROOT, workDir: join(root, 'work'), bareDir: join(root, 'git', 'config.git'), analysisInterval: '2s', minRequests: 5, maxP99LatencyMs: 5000 });
    git = await startGitHttpServer({ root: join(root, 'git') });
  });

  afterEach(async () => {
    await Promise.all(loads.splice(0).map((l) => l.stop()));
    await Promise.all(children.splice(0).map((c) => c.stop()));
    await git.close();
    await rm(root, { recursive: true, force: true });
  });

  test('kill -9 in the middle of a canary step: the restarted operator resumes at the same step, neither repeating nor skipping one', async () => {
    const [port, discoveryPort] = [await freePort(), await freePort()];
    const stateDir = join(root, 'operator');
    let op = operator('operator', { stateDir, port, discoveryPort, clusters: 'dev' });
    await op.waitFor('control plane started', 120_000);
    repo = new DemoConfigRepo(join(root, 'work'), git.url('config.git'), { url: `http://127.0.0.1:${port}/hooks/git`, secret: SECRET });
    const gateway = await cluster('dev', 10, discoveryPort);
    await until('dev healthy with every proxy', 120_000, async () => {
      const c = clusterView(await rollout(port), 'dev');
      return c?.phase === 'Healthy' && c.proxies.total === 7 ? c : undefined;
    });
    loads.push(startLoad({ url: gateway, host: 'bookinfo.example.com', path: '/productpage', rps: 20 }));

    await repo.writeChanges(await repo.bumpOverlays(['dev'], '1.16.1'));
    await repo.commitAndPush('dev to 1.16.1');
    await until('the 50% step', 120_000, async () => (clusterView(await rollout(port), 'dev')?.step === 2 ? true : undefined));
    const before = JSON.parse(await readFile(join(stateDir, 'rollout', 'rollout-state.json'), 'utf8')) as RolloutStateFile;
    expect(before.clusters.dev.stepIndex).toBe(1);

    const outage = loads[0].mark();
    await op.kill9();
    op = operator('operator-restarted', { stateDir, port, discoveryPort, clusters: 'dev' });
    await op.waitFor('control plane started', 120_000);
    const resumed = await until('the restarted operator to answer', 60_000, async () => clusterView(await rollout(port), 'dev'));
    // While the control plane was away, every proxy kept serving its last snapshot: a proxy that lost
    // its configuration would fail nearly every request. The bound is 5%, not zero: full-suite CI
    // runs saw 1 and 4 answers of 503 in this window (none on a quiet machine; bookinfo's reviews and
    // productpage turn any failed downstream call into 503). Cause not proven. One suspect is gone:
    // the endpoint registry is now persisted and restored, so the restarted operator's first pushes
    // hold every endpoint; the other is CPU starvation on 2 cores against the dev overlay's 2 s
    // ratings timeout. The breakdown is printed whenever anything failed.
    const during = outage();
    expect(during.sent).toBeGreaterThan(0);
    if (during.failed > 0) console.warn(`while the operator was away: ${during.failed} of ${during.sent} failed ${JSON.stringify(during.byStatus)}, ${during.timedOut} timed out`);
    expect(during.failed).toBeLessThanOrEqual(Math.floor(during.sent / 20));
    expect(resumed.step).toBe(2);
    expect(resumed.targetVersion).toBe('1.16.1');

    // The resumed rollout runs to its end from step 2: never back to step 1, never a step twice,
    // and the good version is verified (a rollback here would be spurious: its reasons are shown).
    const seen = new Set<number>();
    const messages: string[] = [];
    const done = await until('dev to finish the rollout', 180_000, async () => {
      const c = clusterView(await rollout(port), 'dev');
      if (c?.step) seen.add(c.step);
      if (c && messages[messages.length - 1] !== c.message) messages.push(c.message);
      return c && !c.targetVersion && (c.stableVersion === '1.16.1' || c.phase === 'RolledBack' || /rolled back/.test(c.message)) ? c : undefined;
    });
    if (done.stableVersion !== '1.16.1') throw new Error(`the resumed rollout ended on ${done.stableVersion}: ${messages.join(' | ')}`);
    expect(seen.has(1)).toBe(false);
    expect([...seen].every((step) => step >= 2)).toBe(true);
    const after = JSON.parse(await readFile(join(stateDir, 'rollout', 'rollout-state.json'), 'utf8')) as RolloutStateFile;
    expect(after.clusters.dev.verifiedVersions).toContain('1.16.1');
    expect(after.clusters.dev.failedVersions).not.toContain('1.16.1');
    // From step 2: step 3, then verified — two transitions for the steps, whatever waiting happened between.
    expect(after.clusters.dev.transitions).toBeGreaterThanOrEqual(before.clusters.dev.transitions + 2);
    expect(done.proxies.total).toBe(7);
  }, 600_000);

  test('suspend: true pauses everything: proxies keep their configuration until the suspension is lifted', async () => {
    const [port, discoveryPort] = [await freePort(), await freePort()];
    const op = operator('operator', { stateDir: join(root, 'operator'), port, discoveryPort, clusters: 'dev' });
    await op.waitFor('control plane started', 120_000);
    repo = new DemoConfigRepo(join(root, 'work'), git.url('config.git'), { url: `http://127.0.0.1:${port}/hooks/git`, secret: SECRET });
    await cluster('dev', 13, discoveryPort);
    await until('dev healthy with every proxy', 120_000, async () => {
      const c = clusterView(await rollout(port), 'dev');
      return c?.phase === 'Healthy' && c.proxies.total === 7 ? c : undefined;
    });
    // What git decides for productpage's sidecar: the ratings route's timeout (the dev overlay sets 2s),
    // read from the snapshot the proxy acknowledged. Endpoints may still move during a suspension —
    // service discovery never stops — so the whole snapshot hash is not the measure.
    const PRODUCTPAGE = 'dev/bookinfo/productpage-v1/0';
    const ratingsTimeouts = async (): Promise<number[] | undefined> => {
      const res = await fetch(`http://127.0.0.1:${port}/debug/config/${encodeURIComponent(PRODUCTPAGE)}`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      if (!res?.ok) return undefined;
      const body = (await res.json()) as ProxyConfigResponse;
      if (!body.snapshot || body.proxy.ackedHash !== body.proxy.sentHash) return undefined; // not settled
      const hosts = body.snapshot.routeConfigs.flatMap((rc) => rc.virtualHosts).filter((vh) => vh.domains.some((d) => d.startsWith('ratings')));
      const timeouts = [...new Set(hosts.flatMap((vh) => vh.routes.map((r) => r.timeoutMs ?? 0)))];
      return timeouts.length > 0 ? timeouts : undefined;
    };
    expect(await until('productpage acked its configuration', 60_000, ratingsTimeouts)).toEqual([2000]);

    // One commit suspends the fleet and changes a route: nothing reaches the proxies.
    const fleetText = (await readFile(join(root, 'work', 'trellis.yaml'), 'utf8')).replace('spec:\n', 'spec:\n  suspend: true\n');
    const overlay = join(root, 'work', 'kustomize', 'overlays', 'dev', 'kustomization.yaml');
    const routeChange = (await readFile(overlay, 'utf8')).replace('value: 2s', 'value: 3s');
    await writeFile(join(root, 'work', 'trellis.yaml'), fleetText);
    await writeFile(overlay, routeChange);
    await repo.commitAndPush('suspend the fleet, and change a timeout');
    await until('dev paused', 60_000, async () => (clusterView(await rollout(port), 'dev')?.phase === 'Paused' ? true : undefined));
    // A few of the operator's push rounds (debounce 100 ms) go by; the timeout must not move.
    for (let i = 0; i < 5; i++) {
      await delay(300);
      expect(await until('productpage settled', 30_000, ratingsTimeouts)).toEqual([2000]);
    }

    // Lifting the suspension applies what was committed meanwhile.
    await writeFile(join(root, 'work', 'trellis.yaml'), fleetText.replace('  suspend: true\n', ''));
    await repo.commitAndPush('resume');
    await until('dev healthy again', 60_000, async () => (clusterView(await rollout(port), 'dev')?.phase === 'Healthy' ? true : undefined));
    await until('productpage gets the new configuration', 60_000, async () => {
      const now = await ratingsTimeouts();
      return now && now.length === 1 && now[0] === 3000 ? now : undefined;
    });
  }, 600_000);

  test('one operator per cluster: staging waits for dev, which another operator verifies, through the status branch', async () => {
    const [devPort, devDiscovery, stagingPort, stagingDiscovery] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const devOp = operator('op-dev', { stateDir: join(root, 'op-dev'), port: devPort, discoveryPort: devDiscovery, clusters: 'dev' });
    const stagingOp = operator('op-staging', { stateDir: join(root, 'op-staging'), port: stagingPort, discoveryPort: stagingDiscovery, clusters: 'staging' });
    await Promise.all([devOp.waitFor('control plane started', 120_000), stagingOp.waitFor('control plane started', 120_000)]);
    repo = new DemoConfigRepo(join(root, 'work'), git.url('config.git'), { url: `http://127.0.0.1:${devPort}/hooks/git`, secret: SECRET });
    const [devGw, stagingGw] = await Promise.all([cluster('dev', 11, devDiscovery), cluster('staging', 12, stagingDiscovery)]);
    await until('both clusters healthy', 120_000, async () => {
      const d = clusterView(await rollout(devPort), 'dev');
      const s = clusterView(await rollout(stagingPort), 'staging');
      return d?.phase === 'Healthy' && s?.phase === 'Healthy' && d.proxies.total === 7 && s.proxies.total === 7 ? true : undefined;
    });
    loads.push(startLoad({ url: devGw, host: 'bookinfo.example.com', path: '/productpage', rps: 20 }));
    loads.push(startLoad({ url: stagingGw, host: 'bookinfo.example.com', path: '/productpage', rps: 20 }));

    // Someone bumps both stages at once: the gate must hold staging until dev has verified 1.16.1.
    await repo.writeChanges(await repo.bumpOverlays(['dev', 'staging'], '1.16.1'));
    await repo.commitAndPush('dev and staging to 1.16.1');
    const waiting = await until('staging waiting', 60_000, async () => {
      const s = clusterView(await rollout(stagingPort), 'staging');
      return s?.phase === 'Waiting' ? s : undefined;
    });
    expect(waiting.message).toMatch(/stage "dev"/);

    let devVerifiedAt: number | undefined;
    let stagingStartedAt: number | undefined;
    await until('staging healthy on 1.16.1', 300_000, async () => {
      const d = clusterView(await rollout(devPort), 'dev');
      const s = clusterView(await rollout(stagingPort), 'staging');
      if (devVerifiedAt === undefined && d?.phase === 'Healthy' && d.stableVersion === '1.16.1') devVerifiedAt = Date.now();
      if (stagingStartedAt === undefined && s?.targetVersion === '1.16.1') stagingStartedAt = Date.now();
      return s?.phase === 'Healthy' && s.stableVersion === '1.16.1' ? true : undefined;
    });
    expect(devVerifiedAt).toBeDefined();
    expect(stagingStartedAt).toBeDefined();
    expect(stagingStartedAt!).toBeGreaterThanOrEqual(devVerifiedAt!);
    // The status branch catches up a moment after the API (writes are coalesced).
    const status = await until('the status branch to show staging on 1.16.1', 60_000, async () => {
      const branch = await repo.statusBranch();
      return /currentVersion: 1\.16\.1/.test(branch.files['staging.yaml'] ?? '') ? branch : undefined;
    });
    expect(Object.keys(status.files).sort()).toEqual(expect.arrayContaining(['dev.yaml', 'staging.yaml']));
    // Each operator wrote its own cluster's file only: dev's verification was never overwritten by the staging operator.
    expect(status.files['dev.yaml']).toMatch(/verifiedVersions:\n(\s+- .*\n)*\s+- 1\.16\.1/);
    expect(status.files['staging.yaml']).toMatch(/currentVersion: 1\.16\.1/);
  }, 600_000);
});

// In the same file as the operator tests so the two heaviest suites never run at the same time.
/**
 * The compact demo end to end, as real processes: git smart-HTTP server, operator, four cluster
 * processes of bookinfo behind Trellis proxies, load. It asserts (inside the demo, reported as
 * checks) stage order, the promotion branches, the rollback of a bad version with prod untouched,
 * the revert commit and the status branch's commits and files.
 */
test('npm run demo (compact): upgrade through every stage, bad version caught in dev and reverted', async () => {
  const child = spawn(join(PROJECT_ROOT, 'bin', 'trellis'), ['demo', '--compact', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const last = stdout.trim().split('\n').pop() ?? '';
  let result: DemoResult;
  try {
    result = JSON.parse(last) as DemoResult;
  } catch {
    throw new Error(`demo printed no result (exit ${code}):\n${stdout.slice(-3000)}\n${stderr.slice(-2000)}`);
  }
  const failed = result.checks.filter((c) => !c.ok);
  expect(failed).toEqual([]);
  expect(result.checks.map((c) => c.name)).toEqual(
    expect.arrayContaining(['baseline', 'stage order', 'promotions', 'upgrade', 'rollback', 'prod untouched', 'revert commit', 'status branch']),
  );
  expect(result.figures.rollbackSeconds).toBeGreaterThan(0);
  expect(code).toBe(0);
}, 600_000);
