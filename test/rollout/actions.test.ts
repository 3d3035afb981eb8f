import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../helpers/shared.js';
import {
  BranchPublisher,
  applyRolloutActions,
  initialRolloutState,
  resolveRolloutPolicy,
  type ClusterRolloutState,
  type DesiredFleet,
} from '../../src/reconciler/rollout/index.js';
import type { FleetSpec } from '../../src/mesh/api/index.js';

/** The operator's git actions against a real repository, read back with the git CLI. */
let dir: string;
const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args]).toString().trim();
const logger = pino({ level: 'silent' });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-actions-'));
  for (const entry of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(PROJECT_ROOT, entry), join(dir, entry), { recursive: true });
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-qm', 'fleet');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function fleetWith(promotion: 'manual' | 'pull-request' | 'auto', rollback: 'hold' | 'revert-commit' = 'revert-commit'): FleetSpec {
  const fleet = (parse(execFileSync('git', ['-C', dir, 'show', 'HEAD:trellis.yaml']).toString()) as { spec: FleetSpec }).spec;
  return { ...fleet, rollout: { ...fleet.rollout, promotion, rollback } };
}

function verifiedDev(): { states: Record<string, ClusterRolloutState>; analysis: NonNullable<ClusterRolloutState['lastAnalysis']> } {
  const analysis = { verdict: 'pass' as const, requests: 240, successRate: 99.9, p99LatencyMs: 35, baselineRequests: 0, reasons: [] };
  const dev = { ...initialRolloutState('dev', '1.16.1'), verifiedVersions: ['1.15.4', '1.16.1'], lastAnalysis: analysis };
  return { states: { dev }, analysis };
}

async function act(fleet: FleetSpec, event: Parameters<typeof applyRolloutActions>[0]['transition']['events'][number], states: Record<string, ClusterRolloutState>, cluster = 'dev') {
  const desired: DesiredFleet = { fleet, annotations: {}, versions: { dev: '1.16.1', staging: '1.15.4', 'prod-us': '1.15.4', 'prod-eu': '1.15.4' }, commit: git('rev-parse', 'HEAD') };
  await applyRolloutActions({
    transition: { cluster, state: states[cluster], events: [event], assignmentChanged: true },
    desired,
    policy: resolveRolloutPolicy(fleet),
    states,
    verified: (c) => states[c]?.verifiedVersions ?? [],
    publisher: new BranchPublisher({ repo: dir, cacheDir: join(dir, '.publish') }),
    trackedBranch: 'main',
    logger,
  });
}

test('pull-request promotion pushes trellis/promote/<stage>-<version> with the next stage bump and the evidence', async () => {
  const { states, analysis } = verifiedDev();
  const main = git('rev-parse', 'main');
  await act(fleetWith('pull-request'), { type: 'verified', version: '1.16.1', analysis }, states);
  expect(git('rev-parse', 'main')).toBe(main); // the tracked branch is left to the reviewer
  const branch = 'trellis/promote/staging-1.16.1';
  expect(git('log', '-1', '--format=%an', branch)).toBe('trellis-operator');
  const message = git('log', '-1', '--format=%B', branch);
  expect(message).toMatch(/^Promote 1\.16\.1 to stage staging \(staging\)/);
  expect(message).toMatch(/- dev: Healthy — success 99\.9%, p99 35 ms, 240 requests/);
  expect(git('diff', '--name-only', main, branch)).toBe('kustomize/overlays/staging/kustomization.yaml');
  expect(git('show', `${branch}:kustomize/overlays/staging/kustomization.yaml`)).toMatch(/versions\/1\.16\.1/);
});

test('auto promotion commits the bump on the tracked branch; manual writes nothing', async () => {
  const { states, analysis } = verifiedDev();
  const main = git('rev-parse', 'main');
  await act(fleetWith('manual'), { type: 'verified', version: '1.16.1', analysis }, states);
  expect(git('rev-parse', 'main')).toBe(main);
  expect(git('branch', '--list', 'trellis/*')).toBe('');
  await act(fleetWith('auto'), { type: 'verified', version: '1.16.1', analysis }, states);
  expect(git('rev-parse', 'main^')).toBe(main); // a fast-forward on top of the tip, never a rewrite
  expect(git('log', '-1', '--format=%an %s', 'main')).toBe('trellis-operator Promote 1.16.1 to stage staging (staging)');
});

test('revert-commit points the failed cluster back at what it runs; hold leaves git alone', async () => {
  const states = { dev: { ...initialRolloutState('dev', '1.15.4'), failedVersions: ['1.16.1'] } };
  execFileSync('sed', ['-i', 's#versions/1.15.4#versions/1.16.1#', join(dir, 'kustomize/overlays/dev/kustomization.yaml')]);
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-qam', 'dev to 1.16.1');
  const main = git('rev-parse', 'main');
  const event = { type: 'rolledBack' as const, version: '1.16.1', to: '1.15.4', reason: 'success rate 70% < 99%' };
  await act(fleetWith('pull-request', 'hold'), event, states);
  expect(git('rev-parse', 'main')).toBe(main);
  await act(fleetWith('pull-request', 'revert-commit'), event, states);
  expect(git('rev-parse', 'main^')).toBe(main);
  expect(git('log', '-1', '--format=%B', 'main')).toMatch(/^Revert dev to 1\.15\.4: 1\.16\.1 failed canary analysis\n\nReason: success rate 70% < 99%/);
  expect(git('show', 'main:kustomize/overlays/dev/kustomization.yaml')).toMatch(/versions\/1\.15\.4/);
});
