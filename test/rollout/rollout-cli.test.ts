import { execFile, execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../helpers/shared.js';
import type { RolloutStatusView } from '../../src/reconciler/rollout/view.js';

const run = promisify(execFile);
const trellis = join(PROJECT_ROOT, 'bin', 'trellis');
let dir: string;
let api: Server;
let apiUrl: string;

const view: RolloutStatusView = {
  commit: '0123456789abcdef0123456789abcdef01234567',
  generatedAt: '2026-11-22T20:00:00.000Z',
  suspended: false,
  stages: [
    {
      name: 'dev',
      clusters: [
        {
          cluster: 'dev',
          phase: 'Progressing',
          stableVersion: '1.15.4',
          desiredVersion: '1.16.1',
          targetVersion: '1.16.1',
          weight: 50,
          step: 2,
          steps: [10, 50, 100],
          lastAnalysis: { verdict: 'pass', requests: 120, successRate: 99.9, p99LatencyMs: 42, baselineRequests: 300, baselineSuccessRate: 100, reasons: [] },
          proxies: { total: 7, onTarget: 4, drifted: 1, disconnected: 0 },
          message: 'canary 50% on 1.16.1',
        },
      ],
    },
  ],
};

const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args]).toString().trim();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-rollout-cli-'));
  for (const entry of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(PROJECT_ROOT, entry), join(dir, entry), { recursive: true });
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-qm', 'fleet');
  git('config', 'user.name', 'Release Manager');
  git('config', 'user.email', 'rm@example.com');
  // The operator's /v1/rollout, as a plain HTTP endpoint: what the CLI reads.
  api = createServer((req, res) => {
    if (req.url === '/v1/rollout') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => api.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

test('rollout status prints one plain line per cluster when not a terminal, and JSON with -o json', async () => {
  const { stdout } = await run(trellis, ['rollout', 'status', '--operator', apiUrl]);
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^commit 0123456789ab/);
  expect(lines[1]).toMatch(/^dev\s+dev\s+Progressing\s+1\.15\.4 → 1\.16\.1 50% \(step 2\/3\) success 99\.9% p99 42 ms n=120 proxies 7 drift 1\/0 disc — canary 50% on 1\.16\.1$/);
  const { stdout: json } = await run(trellis, ['rollout', 'status', '--operator', apiUrl, '-o', 'json']);
  expect(JSON.parse(json)).toEqual(view);
});

test('pause, resume and abort are commits to trellis.yaml, in git history with the reason', async () => {
  await run(trellis, ['rollout', 'pause', '--repo', dir, '-m', 'freeze for the launch']);
  expect(parse(await readFile(join(dir, 'trellis.yaml'), 'utf8')).spec.suspend).toBe(true);
  expect(git('log', '-1', '--format=%an: %s')).toBe('Release Manager: Pause rollouts: freeze for the launch');
  await run(trellis, ['rollout', 'resume', '--repo', dir]);
  expect(parse(await readFile(join(dir, 'trellis.yaml'), 'utf8')).spec.suspend).toBeUndefined();
  await run(trellis, ['rollout', 'abort', '1.16.1', '--repo', dir]);
  expect(parse(await readFile(join(dir, 'trellis.yaml'), 'utf8')).metadata.annotations['trellis.dev/abort']).toBe('1.16.1');
  expect(git('log', '--format=%s', '-3').split('\n')).toEqual(['Abort rollout of 1.16.1', 'Resume rollouts', 'Pause rollouts: freeze for the launch']);
  expect(git('status', '--porcelain')).toBe('');
  // The edited Fleet still validates.
  await run(trellis, ['validate', '--repo', dir]);
});

test('rollout status --watch in a terminal draws a live progress bar per cluster', async () => {
  // `script` gives the CLI a real pseudo-terminal, as a person's shell would.
  const { spawn } = await import('node:child_process');
  const child = spawn('script', ['-qefc', `${trellis} rollout status --watch --operator ${apiUrl}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let screen = '';
  const drawn = new Promise<void>((resolve) => {
    child.stdout.on('data', (c: Buffer) => {
      screen += c.toString();
      if (/dev\s+dev\s+\[[█░]+\] 50%/.test(screen)) resolve();
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no progress bar drawn:\n${screen}`)), 60_000)));
  try {
    await Promise.race([drawn, timeout]);
    expect(screen).toMatch(/Progressing\s+1\.15\.4→1\.16\.1 success 99\.9% p99 42ms/);
  } finally {
    clearTimeout(timer);
    child.stdout.destroy();
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}, 90_000);
