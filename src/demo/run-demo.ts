import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import type { ClusterStatusStatus } from '../mesh/api/index.js';
import { startGitHttpServer, type GitHttpServer } from '../reconciler/git-http-server.js';
import { formatClusterLine, type ClusterRolloutView, type RolloutStatusView } from '../reconciler/rollout/view.js';
import { addBadSidecar } from './bad-version.js';
import { ADMIN_PORT, gatewayAddress, podAddress } from './cluster-runtime.js';
import { DemoConfigRepo } from './config-repo.js';
import { startLoad, type LoadCounters, type LoadGenerator } from './load.js';
import { startChild, type Child } from './processes.js';
import { JOIN_TOKEN_DIR } from '../security/join-tokens.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');
const CLUSTERS = ['dev', 'staging', 'prod-us', 'prod-eu'];

export interface DemoOptions {
  /** Leave everything running at the end and print where to look. */
  keep?: boolean;
  /** Shorter analysis interval and lighter load (the end-to-end test). */
  compact?: boolean;
  out?: (line: string) => void;
}

export interface DemoCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DemoResult {
  ok: boolean;
  checks: DemoCheck[];
  figures: {
    analysisIntervalMs: number;
    upgradeSeconds?: number;
    rollbackSeconds?: number;
    upgradeRequests?: number;
    upgradeFailures?: number;
    rollbackIntervals?: number;
    blastRadiusPercent?: number;
    badPhaseRequests?: number;
    badPhaseFailures?: number;
    totalRequests: number;
    totalFailures: number;
  };
  workDir: string;
  operatorUrl?: string;
  /** With `keep`: stops every process the demo started. */
  stop?: () => Promise<void>;
}

interface Running {
  git?: GitHttpServer;
  operator?: Child;
  clusters: Child[];
  loads: LoadGenerator[];
}

/**
 * The one-command demo: a local git server with a clone of the sample config repository, the
 * operator, four clusters of bookinfo behind Trellis sidecars and gateways, and steady load. By
 * real git commits it upgrades 1.15.4 → 1.16.1 through every stage (merging the operator's
 * promotion pull requests as a reviewer would), then pushes a bad 1.16.2 and shows dev's canary
 * catch it and roll back, with prod never touched.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const intervalMs = opts.compact ? 1500 : 3000;
  const rps = opts.compact ? 20 : 40;
  const root = await mkdtemp(join(tmpdir(), 'trellis-demo-'));
  // A loopback block of its own (127.100–249.*), so two demos on one machine do not collide.
  const addressBlock = 100 + Math.floor(Math.random() * 150);
  const logs = join(root, 'logs');
  await mkdir(logs, { recursive: true });
  const run: Running = { clusters: [], loads: [] };
  const checks: DemoCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    out(`${ok ? '✔' : '✘'} ${name}: ${detail}`);
  };
  const started = Date.now();
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s]`;
  const result: DemoResult = { ok: false, checks, figures: { analysisIntervalMs: intervalMs, totalRequests: 0, totalFailures: 0 }, workDir: root };

  try {
    // 1. The config repository, served over real smart HTTP.
    out(`${stamp()} workspace ${root}`);
    await DemoConfigRepo.create({ sampleRoot: PROJECT_ROOT, workDir: join(root, 'work'), bareDir: join(root, 'git', 'config.git'), analysisInterval: `${intervalMs}ms`, minRequests: 10, maxP99LatencyMs: 2000 });
    run.git = await startGitHttpServer({ root: join(root, 'git') });
    const remote = run.git.url('config.git');
    out(`${stamp()} git server ${remote}`);

    // 2. The operator (control plane).
    const secret = 'demo-webhook-secret';
    await writeFile(join(root, 'webhook-secret'), secret, { mode: 0o600 });
    run.operator = startChild('operator', TRELLIS, [
      'operator', '--repo', remote, '--branch', 'main', '--interval', '2s', '--state-dir', join(root, 'operator'),
      '--host', '127.0.0.1', '--port', '0', '--discovery-host', '127.0.0.1', '--discovery-port', '0', '--rollout-tick', '250ms',
      '--webhook-secret-file', join(root, 'webhook-secret'), '--leader-election', 'file',
    ], join(logs, 'operator.log')); // discovery is mutual TLS (the default with the mesh CA)
    const ready = await run.operator.waitFor('control plane started', 60_000);
    const api = String(ready.api);
    const discovery = String(ready.discovery);
    result.operatorUrl = api;
    out(`${stamp()} operator ${api} (discovery ${discovery})`);
    const repo = new DemoConfigRepo(join(root, 'work'), remote, { url: `${api}/hooks/git`, secret });

    // 3. Four clusters of bookinfo, each in its own process, and load on every ingress gateway.
    for (const [index, cluster] of CLUSTERS.entries()) {
      run.clusters.push(
        startChild(cluster, TRELLIS, [
          'demo-cluster', '--cluster', cluster, '--index', String(index), '--address-block', String(addressBlock), '--discovery', discovery, '--state-dir', join(root, 'clusters', cluster),
          // Every proxy gets a workload certificate from the operator's CA (mesh 1.16.1 is STRICT mTLS).
          '--bootstrap-url', `${api}/v1/bootstrap`, '--token-file', join(root, 'operator', 'tokens', JOIN_TOKEN_DIR, `${cluster}.token`),
        ], join(logs, `${cluster}.log`)),
      );
    }
    const gateways = await Promise.all(run.clusters.map((c) => c.waitFor('cluster ready', 60_000)));
    out(`${stamp()} clusters up: ${gateways.map((g, i) => `${CLUSTERS[i]} ${String(g.gatewayUrl)}`).join(', ')}`);

    const watcher = new StatusWatcher(api, out, stamp);
    const healthyOn = (version: string, expectTotal = 7) => (v: RolloutStatusView) =>
      allClusters(v).length === CLUSTERS.length &&
      allClusters(v).every((c) => c.phase === 'Healthy' && c.stableVersion === version && !c.targetVersion && c.proxies.total >= expectTotal && c.proxies.onTarget === c.proxies.total);
    await watcher.until(healthyOn('1.15.4'), 90_000, 'every cluster healthy on 1.15.4');
    check('baseline', true, 'all four clusters healthy on 1.15.4, every proxy synced');
    for (const g of gateways) run.loads.push(startLoad({ url: String(g.gatewayUrl), host: 'bookinfo.example.com', path: '/productpage', rps }));
    // The first requests open every sidecar's connection pools (mTLS handshakes, on a shared machine):
    // wait for steady latency so the first canary is not measured against the warm-up.
    const warm = await warmUp(gateways.map((g) => String(g.gatewayUrl)), 60_000);
    out(`${stamp()} load on every gateway; ${warm ? 'latency steady' : 'latency still high after 60 s, going on'}`);
    await delay(intervalMs);

    // 4. Upgrade 1.15.4 → 1.16.1 by pull request: dev first, then the operator's promotions.
    const upgradeMarks = run.loads.map((l) => l.mark());
    const upgradeAt = Date.now();
    await repo.writeChanges(await repo.bumpOverlays(['dev'], '1.16.1'));
    await repo.commitAndPush('Upgrade dev to mesh 1.16.1');
    out(`${stamp()} pushed: dev → 1.16.1`);
    const merged: string[] = [];
    await watcher.until(
      async (v) => {
        for (const branch of await repo.promotionBranches()) {
          if (merged.includes(branch) || !branch.endsWith('-1.16.1')) continue;
          out(`${stamp()} operator opened ${branch}; merging it`);
          await repo.mergePromotion(branch);
          merged.push(branch);
        }
        return healthyOn('1.16.1')(v);
      },
      intervalMs * 80 + 180_000,
      'every cluster healthy on 1.16.1',
    );
    result.figures.upgradeSeconds = Math.round((Date.now() - upgradeAt) / 100) / 10;
    const during = upgradeMarks.map((m) => m());
    result.figures.upgradeRequests = during.reduce((n, c) => n + c.sent, 0);
    result.figures.upgradeFailures = during.reduce((n, c) => n + c.failed, 0);
    out(`${stamp()} during the upgrade ${result.figures.upgradeFailures} of ${result.figures.upgradeRequests} requests failed (${JSON.stringify(Object.assign({}, ...during.map((c) => c.byStatus)))}, ${during.reduce((n, c) => n + c.timedOut, 0)} timed out)`);
    const order = watcher.firstStarted('1.16.1');
    const inOrder = order.dev !== undefined && order.staging! > order.dev && order['prod-us']! > order.staging! && order['prod-eu']! > order.staging!;
    check('stage order', inOrder, `canary started dev ${rel(order.dev, upgradeAt)}, staging ${rel(order.staging, upgradeAt)}, prod-us ${rel(order['prod-us'], upgradeAt)}, prod-eu ${rel(order['prod-eu'], upgradeAt)}`);
    check('promotions', merged.length === 2, `operator opened and the demo merged: ${merged.join(', ') || 'none'}`);
    check('upgrade', true, `1.16.1 crossed every stage in ${result.figures.upgradeSeconds}s (analysis interval ${intervalMs} ms)`);

    // 5. A bad version: caught in dev's canary and rolled back; prod never touched.
    await repo.pull();
    const badChanges = addBadSidecar(await repo.planUpgrade('1.16.1', '1.16.2'), '1.16.2');
    await repo.writeChanges(badChanges);
    const marks = run.loads.map((l) => l.mark());
    const badAt = Date.now();
    await repo.commitAndPush('Mesh 1.16.2: scope sidecar egress (dev first)');
    out(`${stamp()} pushed: bad 1.16.2 to dev`);
    const rolledBack = await watcher.until((v) => find(v, 'dev')?.phase === 'RolledBack' || (find(v, 'dev')?.phase === 'Healthy' && watcher.sawPhase('dev', 'RolledBack')), intervalMs * 20 + 30_000, 'dev rolled back');
    const rollbackMs = Date.now() - badAt;
    await watcher.until(async () => (await repo.git('ls-remote', remote, 'refs/heads/main')) !== '' && (await revertLanded(repo)), 30_000, 'revert commit on main');
    const bad = marks.map((m) => m());
    const sum = (f: (c: LoadCounters) => number) => bad.reduce((n, c) => n + f(c), 0);
    result.figures.rollbackSeconds = Math.round(rollbackMs / 100) / 10;
    result.figures.rollbackIntervals = Math.round((rollbackMs / intervalMs) * 10) / 10;
    result.figures.badPhaseRequests = sum((c) => c.sent);
    result.figures.badPhaseFailures = sum((c) => c.failed);
    result.figures.blastRadiusPercent = result.figures.badPhaseRequests ? Math.round((10000 * result.figures.badPhaseFailures) / result.figures.badPhaseRequests) / 100 : 0;
    check('rollback', find(rolledBack, 'dev') !== undefined, `dev rolled back ${result.figures.rollbackSeconds}s after the push (${result.figures.rollbackIntervals} analysis intervals): ${find(rolledBack, 'dev')?.message ?? ''}`);
    const touched = ['staging', 'prod-us', 'prod-eu'].filter((c) => watcher.everTargeted(c, '1.16.2'));
    check('prod untouched', touched.length === 0, touched.length ? `1.16.2 reached ${touched.join(', ')}` : 'staging, prod-us and prod-eu never ran 1.16.2');
    check('revert commit', true, 'the operator pushed a commit pointing dev back at 1.16.1');
    await watcher.until(async () => statusOf(await repo.statusBranch(), 'dev')?.failedVersions?.includes('1.16.2') === true, 30_000, 'status branch records the rollback');
    const status = await repo.statusBranch();
    const dev = statusOf(status, 'dev');
    const prodUs = statusOf(status, 'prod-us');
    const byOperator = status.log.every((c) => c.author === 'trellis-operator');
    const readable = status.log.find((c) => /^dev: 1\.16\.2 .*rolled back|^dev: .*rolled back/.test(c.subject));
    check(
      'status branch',
      byOperator && dev?.currentVersion === '1.16.1' && prodUs?.currentVersion === '1.16.1' && !(prodUs?.verifiedVersions ?? []).includes('1.16.2') && readable !== undefined,
      `${status.log.length} commits by trellis-operator; status/dev.yaml currentVersion ${dev?.currentVersion}, failed ${dev?.failedVersions?.join(',')}; status/prod-us.yaml verified ${prodUs?.verifiedVersions?.join(',')}; e.g. "${readable?.subject ?? status.log[0]?.subject}"`,
    );
    out(`${stamp()} blast radius: ${result.figures.badPhaseFailures} of ${result.figures.badPhaseRequests} fleet requests failed while 1.16.2 was live (${result.figures.blastRadiusPercent}%; goal ≤ 0.5%)`);
  } catch (err) {
    check('demo', false, err instanceof Error ? err.message : String(err));
  } finally {
    const totals = run.loads.map((l) => l.counters());
    result.figures.totalRequests = totals.reduce((n, c) => n + c.sent, 0);
    result.figures.totalFailures = totals.reduce((n, c) => n + c.failed, 0);
    result.ok = checks.length > 0 && checks.every((c) => c.ok);
    const stopAll = async () => {
      await Promise.all(run.loads.map((l) => l.stop()));
      await Promise.all(run.clusters.map((c) => c.stop()));
      await run.operator?.stop();
      await run.git?.close();
    };
    if (opts.keep) {
      result.stop = stopAll;
      out(`\nleft running (Ctrl-C stops everything):`);
      out(`  operator API      ${result.operatorUrl}/v1/rollout  /v1/status  /debug/proxies  /metrics`);
      out(`  proxies' admin    http://127.${addressBlock}.<cluster 0-3>.<workload 1-6>:${ADMIN_PORT}/server_info (gateways: .100), e.g. dev productpage http://${podAddress(0, 0, addressBlock)}:${ADMIN_PORT}/config_dump`);
      out(`  ingress gateways  ${CLUSTERS.map((c, i) => `${c} http://${gatewayAddress(i, addressBlock)}:8080/productpage (Host: bookinfo.example.com)`).join(', ')}`);
      const url = run.git?.url('config.git') ?? '';
      out(`  status branch     git -C ${join(root, 'work')} fetch ${url} trellis-status && git -C ${join(root, 'work')} log --format='%an: %s' FETCH_HEAD`);
      out(`  config repository ${join(root, 'work')} — commit there, then git push ${url} HEAD:main (the operator polls every 2 s)`);
      out(`  logs              ${logs}`);
    } else {
      await stopAll();
      if (result.ok) await rm(root, { recursive: true, force: true });
      else out(`logs kept in ${logs}`);
    }
  }
  return result;
}

/** True once every gateway answered /productpage under 300 ms in five rounds in a row (false at the deadline). */
async function warmUp(gatewayUrls: string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let steady = 0;
  while (steady < 5) {
    if (Date.now() > deadline) return false;
    const times = await Promise.all(gatewayUrls.map((url) => timedGet(url)));
    steady = times.every((t) => t < 300) ? steady + 1 : 0;
    await delay(200);
  }
  return true;
}

function timedGet(gatewayUrl: string): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const req = httpRequest(`${gatewayUrl}/productpage`, { headers: { host: 'bookinfo.example.com' }, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? Date.now() - started : Infinity));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(Infinity));
    req.end();
  });
}

function statusOf(branch: { files: Record<string, string> }, cluster: string): ClusterStatusStatus | undefined {
  const text = branch.files[`${cluster}.yaml`];
  return text ? (parseYaml(text) as { status?: ClusterStatusStatus }).status : undefined;
}

async function revertLanded(repo: DemoConfigRepo): Promise<boolean> {
  await repo.pull().catch(() => undefined);
  return (await repo.git('log', '--format=%s', '-5')).includes('Revert dev to 1.16.1');
}

function rel(t: number | undefined, from: number): string {
  return t === undefined ? 'never' : `+${((t - from) / 1000).toFixed(1)}s`;
}

function allClusters(v: RolloutStatusView): ClusterRolloutView[] {
  return v.stages.flatMap((s) => s.clusters);
}

function find(v: RolloutStatusView | undefined, cluster: string): ClusterRolloutView | undefined {
  return v ? allClusters(v).find((c) => c.cluster === cluster) : undefined;
}

/** Polls /v1/rollout, prints each cluster line when it changes, and remembers what it saw. */
class StatusWatcher {
  private readonly last = new Map<string, string>();
  private readonly started = new Map<string, number>();
  private readonly targets = new Map<string, Set<string>>();
  private readonly phases = new Map<string, Set<string>>();

  constructor(private readonly api: string, private readonly out: (l: string) => void, private readonly stamp: () => string) {}

  async until(done: (v: RolloutStatusView) => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<RolloutStatusView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = await this.poll();
      if (view && (await done(view))) return view;
      if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for: ${what}`);
      await delay(250);
    }
  }

  firstStarted(version: string): Record<string, number | undefined> {
    return Object.fromEntries(CLUSTERS.map((c) => [c, this.started.get(`${c}@${version}`)]));
  }

  everTargeted(cluster: string, version: string): boolean {
    return this.targets.get(cluster)?.has(version) ?? false;
  }

  sawPhase(cluster: string, phase: string): boolean {
    return this.phases.get(cluster)?.has(phase) ?? false;
  }

  private async poll(): Promise<RolloutStatusView | undefined> {
    let view: RolloutStatusView;
    try {
      const res = await fetch(`${this.api}/v1/rollout`, { signal: AbortSignal.timeout(3000) });
      if (!res.ok) return undefined;
      view = (await res.json()) as RolloutStatusView;
    } catch {
      return undefined;
    }
    for (const stage of view.stages) {
      for (const c of stage.clusters) {
        if (c.targetVersion) {
          const key = `${c.cluster}@${c.targetVersion}`;
          if (!this.started.has(key)) this.started.set(key, Date.now());
          if (!this.targets.has(c.cluster)) this.targets.set(c.cluster, new Set());
          this.targets.get(c.cluster)!.add(c.targetVersion);
        }
        if (!this.phases.has(c.cluster)) this.phases.set(c.cluster, new Set());
        this.phases.get(c.cluster)!.add(c.phase);
        const line = formatClusterLine(stage.name, { ...c, lastAnalysis: undefined });
        if (this.last.get(c.cluster) !== line) {
          this.last.set(c.cluster, line);
          this.out(`${this.stamp()} ${formatClusterLine(stage.name, c)}`);
        }
      }
    }
    return view;
  }
}
