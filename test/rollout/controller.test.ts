import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { RolloutController, RolloutStateStore, type DesiredFleet, type StatsByVersion } from '../../src/reconciler/rollout/index.js';

const BUCKETS = [10, 100, 1000];
const proxies = Array.from({ length: 10 }, (_, i) => `dev/bookinfo/reviews-v1/${i}`);
let dir: string;
let stats: StatsByVersion;

function grow(version: string, requests: number, errors: number): void {
  const cur = stats[version] ?? { requests: 0, errors5xx: 0, latencyBucketsMs: BUCKETS, latencyCounts: [0, 0, 0, 0], sumMs: 0 };
  stats = { ...stats, [version]: { ...cur, requests: cur.requests + requests, errors5xx: cur.errors5xx + errors, latencyCounts: [cur.latencyCounts[0] + requests, 0, 0, 0], sumMs: cur.sumMs + 5 * requests } };
}

function desired(version: string, extra: Partial<DesiredFleet> = {}): DesiredFleet {
  return {
    fleet: {
      clusters: [{ name: 'dev' }, { name: 'prod' }],
      stages: [
        { name: 'dev', clusters: ['dev'] },
        { name: 'prod', clusters: ['prod'] },
      ],
      rollout: { canarySteps: [10, 50, 100], analysis: { interval: '1s', minRequests: 10, failureLimit: 1 } },
    },
    annotations: {},
    versions: { dev: version, prod: version },
    commit: 'c1',
    ...extra,
  };
}

function controller(verifiedElsewhere: Record<string, string[]> = {}, resumeSettleMs = 0): RolloutController {
  return new RolloutController({
    resumeSettleMs,
    store: new RolloutStateStore(dir),
    clusters: () => ['dev', 'prod'],
    observe: { proxiesOf: () => proxies, statsOf: () => stats },
    verifiedElsewhere: (c) => verifiedElsewhere[c] ?? [],
  });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-ctl-'));
  stats = {};
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test('assigns the canary version to the stable-hash-selected proxies and resumes at the same step after a restart', async () => {
  const a = controller();
  await a.load();
  await a.setDesired(desired('1.15.4'));
  await a.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  let t = 0;
  const first = await a.tick(t);
  expect(first.map((x) => [x.cluster, x.state.phase, x.assignmentChanged])).toEqual([['dev', 'Progressing', true]]);
  expect(proxies.filter((p) => a.versionFor('dev', p) === '1.16.1')).toHaveLength(1);
  grow('1.16.1', 20, 0);
  t += 1000;
  await a.tick(t); // → 50%
  const onCanary = proxies.filter((p) => a.versionFor('dev', p) === '1.16.1');
  expect(onCanary).toHaveLength(5);

  // "Restart": a fresh controller over the same state dir picks up exactly where the first left off.
  const b = controller();
  await b.load();
  await b.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  expect(b.states.dev.stepIndex).toBe(1);
  expect(b.states.dev.transitions).toBe(a.states.dev.transitions);
  expect(proxies.filter((p) => b.versionFor('dev', p) === '1.16.1')).toEqual(onCanary);
  expect(await b.tick(t + 10)).toEqual([]); // window not over: no repeated step
  expect(b.states.dev.windowStartedAt).toBe(t); // the persisted window (settle period 0 here)
  grow('1.16.1', 20, 0);
  await b.tick(t + 1000); // → 100%
  grow('1.16.1', 20, 0);
  const done = await b.tick(t + 2000);
  expect(done[0].state.phase).toBe('Healthy');
  expect(b.verified('dev')).toContain('1.16.1');
  expect(proxies.every((p) => b.versionFor('dev', p) === '1.16.1')).toBe(true);
});

test('after a restart the current step is measured afresh until counters settle, without repeating the step', async () => {
  const a = controller();
  await a.load();
  await a.setDesired(desired('1.15.4'));
  await a.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  await a.tick(0);
  grow('1.16.1', 500, 0); // history the old process had seen
  const b = controller({}, 5000);
  await b.load();
  await b.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  expect(await b.tick(4000)).toEqual([]); // the first tick starts the settle period (until 9000) and re-opens the window
  expect(b.states.dev.windowStartedAt).toBe(4000);
  expect(b.states.dev.stepIndex).toBe(0);
  grow('1.16.1', 20, 0);
  expect(await b.tick(8999)).toEqual([]); // still settling: no step taken
  grow('1.16.1', 20, 0);
  const [next] = await b.tick(9000 + 1000);
  expect(next.state.stepIndex).toBe(1);
  expect(next.state.lastAnalysis?.requests).toBe(20); // only what happened after the window re-opened
});

test('prod waits for dev to verify, and opens from the status branch record of another operator', async () => {
  const alone = controller();
  await alone.load();
  await alone.setDesired(desired('1.15.4'));
  await alone.setDesired({ ...desired('1.15.4'), versions: { dev: '1.15.4', prod: '1.16.1' } });
  const [waiting] = await alone.tick(0);
  expect(waiting.cluster).toBe('prod');
  expect(waiting.state.phase).toBe('Waiting');
  expect(waiting.state.message).toMatch(/stage "dev"/);
  expect(alone.versionFor('prod', proxies[0])).toBe('1.15.4');

  await rm(dir, { recursive: true, force: true });
  const withRecord = controller({ dev: ['1.16.1'] });
  await withRecord.load();
  await withRecord.setDesired(desired('1.15.4'));
  await withRecord.setDesired({ ...desired('1.15.4'), versions: { dev: '1.15.4', prod: '1.16.1' } });
  const [moving] = await withRecord.tick(0);
  expect(moving.state.phase).toBe('Progressing');
});

test('an abort marker rolls the canary back and suspend pauses', async () => {
  const c = controller();
  await c.load();
  await c.setDesired(desired('1.15.4'));
  await c.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  await c.tick(0);
  await c.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' }, fleet: { ...desired('1').fleet, suspend: true } });
  expect((await c.tick(1))[0].state.phase).toBe('Paused');
  await c.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' }, annotations: { 'trellis.dev/abort': '1.16.1' } });
  const [rolled] = await c.tick(2);
  expect(rolled.state.phase).toBe('RolledBack');
  expect(proxies.every((p) => c.versionFor('dev', p) === '1.15.4')).toBe(true);
});

test('a step keeps its assignment while proxies reconnect one by one after a restart: no proxy flips version', async () => {
  const a = controller();
  await a.load();
  await a.setDesired(desired('1.15.4'));
  await a.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  await a.tick(0);
  grow('1.16.1', 20, 0);
  await a.tick(1000); // → 50% of the 10 proxies
  const before = new Map(proxies.map((p) => [p, a.versionFor('dev', p)]));
  expect([...before.values()].filter((v) => v === '1.16.1')).toHaveLength(5);

  // The restarted operator sees proxies come back in an order of their own; at every moment each
  // connected proxy must be told the version it ran before (re-ranking a partial set would not).
  let connected: string[] = [];
  const b = new RolloutController({
    resumeSettleMs: 0,
    store: new RolloutStateStore(dir),
    clusters: () => ['dev', 'prod'],
    observe: { proxiesOf: () => connected, statsOf: () => stats },
    verifiedElsewhere: () => [],
  });
  await b.load();
  await b.setDesired({ ...desired('1.15.4'), versions: { dev: '1.16.1', prod: '1.15.4' } });
  const order = [...proxies].reverse();
  for (const p of order) {
    connected = [...connected, p];
    for (const q of connected) expect({ proxy: q, version: b.versionFor('dev', q) }).toEqual({ proxy: q, version: before.get(q) });
  }
  // A proxy the step never saw gets a version by the stable ranking of who is connected now.
  connected = [...proxies, 'dev/bookinfo/reviews-v1/new'];
  expect(['1.15.4', '1.16.1']).toContain(b.versionFor('dev', 'dev/bookinfo/reviews-v1/new'));
});
