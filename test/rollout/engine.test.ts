import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import {
  analyseWindow,
  bumpOverlayVersion,
  canaryCount,
  initialRolloutState,
  latencyQuantile,
  referencedVersion,
  resolveRolloutPolicy,
  RolloutStateStore,
  selectCanaryProxies,
  stageGate,
  tickCluster,
  upgradeSkewViolation,
  type ClusterRolloutState,
  type StatsByVersion,
  type TickInput,
  type VersionCounters,
} from '../../src/reconciler/rollout/index.js';
import type { FleetSpec } from '../../src/mesh/api/index.js';

const BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000];

function counters(requests: number, errors: number, latencyMs = 20): VersionCounters {
  const counts = new Array(BUCKETS.length + 1).fill(0);
  const bucket = BUCKETS.findIndex((b) => latencyMs <= b);
  counts[bucket === -1 ? BUCKETS.length : bucket] = requests;
  return { requests, errors5xx: errors, latencyBucketsMs: BUCKETS, latencyCounts: counts, sumMs: requests * latencyMs };
}

const fleet: FleetSpec = {
  clusters: [{ name: 'dev' }, { name: 'staging' }, { name: 'prod-us' }, { name: 'prod-eu' }],
  stages: [
    { name: 'dev', clusters: ['dev'] },
    { name: 'staging', clusters: ['staging'] },
    { name: 'prod', clusters: ['prod-us', 'prod-eu'] },
  ],
  rollout: {
    canarySteps: [10, 50, 100],
    analysis: { interval: '10s', minSuccessRate: 99, maxP99LatencyMs: 500, minRequests: 20, failureLimit: 2, maxRegression: 1 },
  },
};
const policy = resolveRolloutPolicy(fleet);

/** Drives a cluster with a clock and cumulative counters the test grows per interval. */
class Driver {
  state: ClusterRolloutState;
  now = 1_000_000;
  stats: StatsByVersion = {};
  events: string[] = [];
  constructor(stable = '1.15.4') {
    this.state = initialRolloutState('dev', stable);
  }
  traffic(version: string, requests: number, errors: number, latencyMs = 20): void {
    const add = counters(requests, errors, latencyMs);
    const cur = this.stats[version] ?? counters(0, 0);
    this.stats = {
      ...this.stats,
      [version]: {
        requests: cur.requests + add.requests,
        errors5xx: cur.errors5xx + add.errors5xx,
        latencyBucketsMs: BUCKETS,
        latencyCounts: cur.latencyCounts.map((c, i) => c + add.latencyCounts[i]),
        sumMs: cur.sumMs + add.sumMs,
      },
    };
  }
  tick(over: Partial<TickInput> = {}): ClusterRolloutState {
    const r = tickCluster(this.state, { now: this.now, policy, desiredVersion: '1.16.1', suspended: false, aborted: false, gate: { open: true }, stats: this.stats, ...over });
    this.events.push(...r.events.map((e) => e.type));
    this.state = r.state;
    return r.state;
  }
  advance(ms = policy.intervalMs): void {
    this.now += ms;
  }
}

describe('analysis', () => {
  test('p99 interpolates inside the histogram bucket as histogram_quantile does', () => {
    const c = counters(100, 0, 40); // all in the (25, 50] bucket
    expect(latencyQuantile(c, 0.99)).toBeCloseTo(25 + 25 * 0.99, 5);
    expect(latencyQuantile(counters(0, 0), 0.99)).toBeUndefined();
  });

  test('passes, fails on success rate, p99 and regression against the baseline, and is inconclusive without traffic', () => {
    const t = policy.thresholds;
    expect(analyseWindow(counters(100, 0), counters(100, 0), t).verdict).toBe('pass');
    const lowRate = analyseWindow(counters(100, 30), counters(100, 0), t);
    expect(lowRate.verdict).toBe('fail');
    expect(lowRate.reasons.join()).toMatch(/success rate 70% < 99%/);
    expect(analyseWindow(counters(100, 0, 900), counters(100, 0), t).reasons.join()).toMatch(/p99 .* > 500 ms/);
    // 99.0% passes the absolute threshold but is 1.5 points below a perfect baseline.
    const regression = analyseWindow(counters(200, 2), counters(1000, 0), { ...t, maxRegression: 0.5 });
    expect(regression.verdict).toBe('fail');
    expect(regression.reasons.join()).toMatch(/below baseline/);
    expect(analyseWindow(counters(5, 0), counters(100, 0), t).verdict).toBe('inconclusive');
  });
});

describe('canary selection', () => {
  test('is deterministic, grows monotonically with the step, and moves at least one proxy', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `dev/bookinfo/reviews-${i}`);
    const ten = selectCanaryProxies(ids, 10);
    const fifty = selectCanaryProxies([...ids].reverse(), 50);
    expect(ten.size).toBe(2);
    expect(fifty.size).toBe(10);
    for (const id of ten) expect(fifty.has(id)).toBe(true);
    expect(selectCanaryProxies(ids, 10)).toEqual(ten);
    expect(canaryCount(3, 10)).toBe(1);
    expect(canaryCount(3, 0)).toBe(0);
  });
});

describe('rollout state machine', () => {
  test('a healthy version moves 10% → 50% → 100% one interval at a time and is verified', () => {
    const d = new Driver();
    expect(d.tick().phase).toBe('Progressing');
    expect(d.state.stepIndex).toBe(0);
    d.traffic('1.16.1', 50, 0);
    d.traffic('1.15.4', 450, 0);
    d.advance(policy.intervalMs - 1);
    expect(d.tick().stepIndex).toBe(0); // interval not yet over
    d.advance(1);
    expect(d.tick().stepIndex).toBe(1);
    d.traffic('1.16.1', 200, 0);
    d.advance();
    expect(d.tick().stepIndex).toBe(2);
    d.traffic('1.16.1', 400, 0);
    d.advance();
    const done = d.tick();
    expect(done.phase).toBe('Healthy');
    expect(done.stableVersion).toBe('1.16.1');
    expect(done.verifiedVersions).toContain('1.16.1');
    expect(d.events).toEqual(['started', 'stepAdvanced', 'stepAdvanced', 'verified']);
  });

  test('failed checks count to the failure limit, then every proxy returns to the stable version', () => {
    const d = new Driver();
    d.tick();
    d.traffic('1.16.1', 100, 30);
    d.advance();
    expect(d.tick().phase).toBe('Degraded');
    d.traffic('1.16.1', 100, 30);
    d.advance();
    const s = d.tick();
    expect(s.phase).toBe('RolledBack');
    expect(s.targetVersion).toBeUndefined();
    expect(s.stableVersion).toBe('1.15.4');
    expect(s.failedVersions).toEqual(['1.16.1']);
    expect(s.message).toMatch(/1\.16\.1 rolled back to 1\.15\.4: success rate 70% < 99%/);
    // The same bad version is not retried while git still asks for it.
    d.advance();
    expect(d.tick().phase).toBe('RolledBack');
    expect(d.state.targetVersion).toBeUndefined();
    // git reverted: healthy again on the stable version.
    expect(d.tick({ desiredVersion: '1.15.4' }).phase).toBe('Healthy');
  });

  test('a clearly failing canary is judged before the interval ends; a passing one always waits it out', () => {
    const d = new Driver();
    d.tick();
    d.traffic('1.16.1', 40, 0);
    d.advance(policy.intervalMs / 4);
    expect(d.tick().stepIndex).toBe(0); // healthy but early: no promotion yet
    d.traffic('1.16.1', 40, 20); // 75% success over 80 requests: far below 99%
    d.advance(policy.intervalMs / 4);
    const s = d.tick();
    expect(s.phase).toBe('Degraded');
    expect(s.failures).toBe(1);
    d.traffic('1.16.1', 5, 1); // a new window with too few requests to judge early
    d.advance(policy.intervalMs / 4);
    expect(d.tick().failures).toBe(1);
    d.traffic('1.16.1', 20, 10);
    d.advance(policy.intervalMs / 4);
    expect(d.tick().phase).toBe('RolledBack');
    // 98% (1 point under the minimum) is a failure at the end of a window, never a fast one.
    const e = new Driver();
    e.tick();
    e.traffic('1.16.1', 100, 2);
    e.advance(policy.intervalMs / 2);
    expect(e.tick().failures).toBe(0);
    e.advance(policy.intervalMs / 2);
    expect(e.tick().failures).toBe(1);
  });

  test('a quiet canary is neither promoted nor failed', () => {
    const d = new Driver();
    d.tick();
    d.traffic('1.16.1', 3, 0);
    d.advance();
    const s = d.tick();
    expect(s.stepIndex).toBe(0);
    expect(s.failures).toBe(0);
    expect(s.message).toMatch(/waiting for traffic/);
  });

  test('the stage gate holds a cluster in Waiting with the stage named, suspend pauses, abort rolls back', () => {
    const d = new Driver();
    const waiting = d.tick({ gate: stageGate(fleet, 'staging', '1.16.1', () => []) });
    expect(waiting.phase).toBe('Waiting');
    expect(waiting.message).toMatch(/stage "dev" to verify 1\.16\.1/);
    expect(d.tick({ suspended: true }).phase).toBe('Paused');
    d.tick();
    expect(d.state.phase).toBe('Progressing');
    expect(d.tick({ aborted: true }).phase).toBe('RolledBack');
  });

  test('the gate opens only when every cluster of the previous stage verified the version', () => {
    const verified: Record<string, string[]> = { dev: ['1.16.1'], staging: ['1.16.1'], 'prod-us': [] };
    const v = (c: string) => verified[c] ?? [];
    expect(stageGate(fleet, 'dev', '1.16.1', v).open).toBe(true);
    expect(stageGate(fleet, 'staging', '1.16.1', v).open).toBe(true);
    expect(stageGate(fleet, 'prod-eu', '1.16.1', v).open).toBe(true);
    expect(stageGate(fleet, 'staging', '1.17.0', v).open).toBe(false);
  });
});

describe('state persistence', () => {
  test('state written is read back whole, with 0600 permissions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-rollout-'));
    try {
      const store = new RolloutStateStore(dir);
      expect(await store.load()).toEqual({ version: 1, clusters: {} });
      const d = new Driver();
      d.tick();
      await store.save({ version: 1, clusters: { dev: d.state } });
      expect((await new RolloutStateStore(dir).load()).clusters.dev).toEqual(d.state);
      expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('upgrades', () => {
  test('skew rules: at most two minors forward for a canary move', () => {
    expect(upgradeSkewViolation('1.15.4', '1.16.1')).toBeUndefined();
    expect(upgradeSkewViolation('1.15.4', '1.17.0')).toBeUndefined();
    expect(upgradeSkewViolation('1.15.4', '1.18.0')).toMatch(/skips 3 minor versions/);
    expect(upgradeSkewViolation('1.15.4', '2.0.0')).toMatch(/major/);
    expect(upgradeSkewViolation('1.15.4', '1.15.4')).toMatch(/already/);
  });

  test('overlay bump rewrites only the version reference and keeps comments', () => {
    const text = `# prod overlay\nresources:\n  - ../../base\n  - ../../../versions/1.15.4 # mesh version\npatches:\n  - path: timeouts.yaml\n`;
    const { text: out, changed } = bumpOverlayVersion(text, '1.15.4', '1.16.1');
    expect(changed).toBe(true);
    expect(out).toContain('../../../versions/1.16.1');
    expect(out).toContain('# prod overlay');
    expect(out).toContain('path: timeouts.yaml');
    expect(referencedVersion(out)).toBe('1.16.1');
    expect(bumpOverlayVersion(text, '1.14.0', '1.16.1').changed).toBe(false);
  });
});
