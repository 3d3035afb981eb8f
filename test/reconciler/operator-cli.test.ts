import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { signWebhookBody } from '../../src/reconciler/webhook.js';
import { git, serveRepo, type ServedRepo } from '../helpers/git-server.js';
import { PROJECT_ROOT } from '../helpers/shared.js';
import { startFakeKubeApi, type FakeKubeApi } from './helpers/fake-kube-api.js';
import { waitFor } from './helpers/operator-harness.js';

const execFileP = promisify(execFile);
const SECRET = 'cli-webhook-secret';

let repo: ServedRepo;
let kube: FakeKubeApi;
let tmp: string;
let child: ChildProcess;
let exited: Promise<number | null>;
const logs: Array<Record<string, any>> = [];
let base = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trellis-cli-op-'));
  // The project's own sample config repository, as users would push it.
  const src = join(tmp, 'sample');
  for (const p of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(PROJECT_ROOT, p), join(src, p), { recursive: true });
  repo = await serveRepo({ fromDir: src });
  kube = await startFakeKubeApi();
  await writeFile(join(tmp, 'secret'), `${SECRET}\n`);
  child = spawn(
    join(PROJECT_ROOT, 'bin', 'trellis'),
    [
      'operator', '--repo', repo.url, '--branch', 'main', '--interval', '300ms', '--port', '0', '--host', '127.0.0.1',
      '--state-dir', join(tmp, 'state'), '--webhook-secret-file', join(tmp, 'secret'), '--kubeconfig', kube.kubeconfigPath,
      '--timeout', '5s', '--discovery-port', '0', '--discovery-host', '127.0.0.1', '--rollout-tick', '200ms',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRELLIS_GIT_TOKEN: '' } },
  );
  exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (l.trim()) logs.push(JSON.parse(l));
  });
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
  const started = await waitFor(() => logs.find((l) => l.msg === 'control plane started'), 'control plane started log', 50_000);
  base = started.api;
  expect(started.discovery).toMatch(/^(https?|h2c?):\/\/127\.0\.0\.1:\d+/);
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await repo?.close();
  await kube?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe('trellis operator (CLI, child process) on the sample config repository', () => {
  test('applies the sample repo: /v1/status, /readyz, /metrics, ClusterStatus resources and kubectl', async () => {
    const head = await git(repo.workDir, 'rev-parse', 'HEAD');
    const status = await waitFor(async () => {
      const s = (await (await fetch(`${base}/v1/status`)).json()) as any;
      return s.source.lastAppliedCommit === head ? s : undefined;
    }, 'sample repo applied', 15_000);
    expect(Object.keys(status.clusters).sort()).toEqual(['dev', 'prod-eu', 'prod-us', 'staging']);
    // First deployment, no proxies yet: the rollout engine reports the desired version as current.
    for (const c of Object.values<any>(status.clusters)) expect(c).toMatchObject({ observedCommit: head, desiredVersion: '1.15.4', currentVersion: '1.15.4', phase: 'Healthy' });
    expect(status.leader).toMatchObject({ isLeader: true });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text()) as Array<{ name: string; metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: unknown }> }>;
    const fam = (n: string) => families.find((f) => f.name === n);
    expect(Number(fam('trellis_reconciles_total')!.metrics.find((m) => m.labels?.result === 'applied')!.value)).toBeGreaterThanOrEqual(1);
    expect(fam('trellis_reconcile_duration_seconds')).toBeDefined();
    expect(fam('trellis_last_applied_commit_info')!.metrics[0]!.labels).toMatchObject({ commit: head, ref: 'refs/heads/main' });
    expect(Number(fam('trellis_last_applied_age_seconds')!.metrics[0]!.value)).toBeGreaterThanOrEqual(0);
    expect(fam('trellis_git_poll_duration_seconds')).toBeDefined();
    expect(fam('trellis_leader')!.metrics[0]!.value).toBe('1');

    await waitFor(
      () => ['dev', 'staging', 'prod-us', 'prod-eu'].every((c) => (kube.get('clusterstatuses', 'trellis-system', c)?.status as { phase?: string } | undefined)?.phase),
      'every ClusterStatus written to Kubernetes',
    );
    const cache = join(tmp, 'kubectl-cache');
    const { stdout } = await execFileP('kubectl', ['--kubeconfig', kube.kubeconfigPath, '--cache-dir', cache, 'get', 'clusterstatuses']);
    const lines = stdout.trim().split('\n').map((l) => l.split(/\s+/));
    expect(lines[0]).toEqual(['NAME', 'CLUSTER', 'DESIRED', 'CURRENT', 'PHASE', 'DRIFT', 'AGE']);
    expect(lines.slice(1).map((l) => l.slice(0, 5).join(' ')).sort()).toEqual([
      'dev dev 1.15.4 1.15.4 Healthy',
      'prod-eu prod-eu 1.15.4 1.15.4 Healthy',
      'prod-us prod-us 1.15.4 1.15.4 Healthy',
      'staging staging 1.15.4 1.15.4 Healthy',
    ]);
    // The Lease was taken with kubeconfig (leader election "auto").
    expect(kube.get('leases', 'trellis-system', 'trellis-operator')).toBeDefined();
  });

  test('webhook via the CLI: 401 unsigned, 202 signed; a broken commit is refused with file:line', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    expect((await fetch(`${base}/hooks/git`, { method: 'POST', body })).status).toBe(401);
    const bad = await repo.commitAndPush({ 'kustomize/overlays/dev/kustomization.yaml': 'resources: [unclosed\n' }, 'break dev overlay');
    const res = await fetch(`${base}/hooks/git`, { method: 'POST', body, headers: { 'x-hub-signature-256': signWebhookBody(body, SECRET) } });
    expect(res.status).toBe(202);
    const s = await waitFor(async () => {
      const j = (await (await fetch(`${base}/v1/status`)).json()) as any;
      return j.source.refused?.commit === bad ? j : undefined;
    }, 'broken commit refused', 15_000);
    expect(s.clusters.dev.phase).toBe('InvalidConfig');
    expect(s.clusters.dev.errors.join('\n')).toMatch(/kustomize\/overlays\/dev\/kustomization\.yaml:\d+/);
    expect(s.source.lastAppliedCommit).not.toBe(bad);
  });

  test('SIGTERM: clean shutdown, exit 0, Lease released', async () => {
    expect((kube.get('leases', 'trellis-system', 'trellis-operator')!.spec as { holderIdentity?: string }).holderIdentity).toBeTruthy();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(logs.some((l) => l.msg === 'operator stopped')).toBe(true);
    expect((kube.get('leases', 'trellis-system', 'trellis-operator')!.spec as { holderIdentity?: string }).holderIdentity).toBeUndefined();
  });
});
