import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { setCondition, removeCondition } from '../../src/reconciler/conditions.js';
import { Redactor } from '../../src/reconciler/credentials.js';
import { FileLockElector } from '../../src/reconciler/leader.js';
import { ReconcileLoop, parseDuration, type RunOutcome, type Trigger } from '../../src/reconciler/schedule.js';
import { statusSummaryKey } from '../../src/reconciler/status-format.js';
import { StatusStore } from '../../src/reconciler/status-store.js';
import { StatusPublisher, type StatusBatch } from '../../src/reconciler/status-publisher.js';
import { signWebhookBody, verifyWebhookSignature } from '../../src/reconciler/webhook.js';
import { waitFor } from './helpers/operator-harness.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('webhook signatures', () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  test.each([
    ['github sha256', { 'x-hub-signature-256': signWebhookBody(body, 's3') }, true],
    ['generic sha256', { 'x-signature': signWebhookBody(body, 's3') }, true],
    ['generic sha512', { 'x-signature': signWebhookBody(body, 's3', 'sha512') }, true],
    ['github with sha512 prefix', { 'x-hub-signature-256': signWebhookBody(body, 's3', 'sha512') }, false],
    ['wrong secret', { 'x-hub-signature-256': signWebhookBody(body, 'other') }, false],
    ['truncated digest', { 'x-signature': signWebhookBody(body, 's3').slice(0, 20) }, false],
    ['no header', {}, false],
    ['sha1 (refused)', { 'x-signature': 'sha1=0123456789abcdef0123456789abcdef01234567' }, false],
  ])('%s', (_name, headers, ok) => {
    expect(verifyWebhookSignature(body, headers, 's3').ok).toBe(ok);
  });
});

describe('conditions', () => {
  test('lastTransitionTime moves only when status changes; sorted Ready, Reconciling, Stalled, rest', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:05:00Z');
    let c = setCondition([], { type: 'FetchFailed', status: 'True', reason: 'GitOperationFailed', message: 'a' }, t1);
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'GitOperationFailed', message: 'a' }, t1);
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'GitOperationTimeout', message: 'b' }, t2);
    expect(c.map((x) => x.type)).toEqual(['Ready', 'FetchFailed']);
    expect(c[0]).toMatchObject({ reason: 'GitOperationTimeout', message: 'b', lastTransitionTime: t1.toISOString() });
    c = setCondition(c, { type: 'Ready', status: 'True', reason: 'ReconciliationSucceeded', message: 'ok' }, t2);
    expect(c[0]!.lastTransitionTime).toBe(t2.toISOString());
    expect(removeCondition(c, 'FetchFailed').map((x) => x.type)).toEqual(['Ready']);
    const long = setCondition([], { type: 'Ready', status: 'True', reason: 'R', message: 'x'.repeat(5000) }, t1);
    expect(long[0]!.message.length).toBeLessThanOrEqual(1024);
  });

  test('summary key ignores analysis figures and timestamps, not verdicts', () => {
    const base = { phase: 'Progressing' as const, lastAnalysis: { successRate: 99.1, p99LatencyMs: 100, passed: true } };
    expect(statusSummaryKey(base)).toBe(statusSummaryKey({ ...base, lastAnalysis: { successRate: 99.9, p99LatencyMs: 80, passed: true } }));
    expect(statusSummaryKey(base)).not.toBe(statusSummaryKey({ ...base, lastAnalysis: { ...base.lastAnalysis, passed: false } }));
  });

  test('history is deduplicated by (commit, outcome) and capped at 5', () => {
    const store = new StatusStore({ url: 'u', ref: 'main' });
    const now = new Date();
    store.recordHistory({ commit: 'a', outcome: 'failed' }, now);
    store.recordHistory({ commit: 'a', outcome: 'failed' }, now);
    for (const c of ['b', 'c', 'd', 'e', 'f']) store.recordHistory({ commit: c, outcome: 'applied' }, now);
    expect(store.source.history.map((h) => h.commit)).toEqual(['f', 'e', 'd', 'c', 'b']);
    store.recordHistory({ commit: 'x', outcome: 'refused' }, now);
    store.recordHistory({ commit: 'x', outcome: 'refused' }, now);
    expect(store.source.history[0]).toMatchObject({ commit: 'x', count: 2 });
  });
});

describe('status publisher', () => {
  test('a burst becomes one write; unchanged summaries write nothing; a failed write is retried with the latest state', async () => {
    const store = new StatusStore({ url: 'u', ref: 'main' });
    const batches: StatusBatch[] = [];
    let failNext = 0;
    const publisher = new StatusPublisher(store, { coalesceMs: 30, backoff: { initialMs: 20, maxMs: 40, factor: 2 } });
    publisher.addSink({
      name: 'memory',
      async write(batch) {
        if (failNext > 0) {
          failNext -= 1;
          throw new Error('remote down');
        }
        batches.push(batch);
      },
    });
    for (const phase of ['Progressing', 'Progressing', 'Healthy'] as const) {
      store.update('dev', (s) => ({ ...s, phase, desiredVersion: '1.16.1' }));
      store.update('prod', (s) => ({ ...s, phase: 'Waiting' }));
    }
    await waitFor(() => batches.length === 1, 'one coalesced write');
    expect(batches[0]!.changed.map((c) => `${c.cluster}:${c.status.phase}`)).toEqual(['dev:Healthy', 'prod:Waiting']);
    expect(batches[0]!.message).toBe('dev: 1.16.1 healthy (+1 more)\n\ndev: 1.16.1 healthy\nprod: waiting\n');

    // Analysis figures alone are not a transition.
    store.update('dev', (s) => ({ ...s, lastAnalysis: { successRate: 99.9, p99LatencyMs: 80 } }));
    await publisher.flush();
    expect(batches.length).toBe(1);

    failNext = 2;
    store.update('prod', (s) => ({ ...s, phase: 'Progressing' }));
    store.update('prod', (s) => ({ ...s, phase: 'Healthy' }));
    await waitFor(() => batches.length === 2, 'write after retries');
    expect(batches[1]!.changed.map((c) => `${c.cluster}:${c.status.phase}`)).toEqual(['prod:Healthy']);
    expect(publisher.errors()).toEqual({});
    await publisher.close();
  });
});

describe('credential redaction', () => {
  test('secrets, their base64 form and URL userinfo are stripped', () => {
    const r = new Redactor({ type: 'basic', username: 'bot', password: 'pa55word' });
    const b64 = Buffer.from('bot:pa55word').toString('base64');
    const out = r.redact(`GET https://bot:pa55word@git.example/x.git failed; Authorization: Basic ${b64}; pa55word`);
    expect(out).not.toContain('pa55word');
    expect(out).not.toContain(b64);
    expect(out).toContain('https://***@git.example');
  });
});

describe('schedule', () => {
  test('parseDuration', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
  });

  test('runs serially; a trigger during a run makes exactly one more run; failures back off', async () => {
    const calls: Trigger[] = [];
    let active = 0;
    let maxActive = 0;
    let release!: () => void;
    let outcome: RunOutcome['result'] = 'applied';
    const loop = new ReconcileLoop({
      schedule: { cron: '0 0 1 1 *' },
      debounceMs: 5,
      backoff: { initialMs: 30, maxMs: 60, factor: 2 },
      run: async (trigger) => {
        calls.push(trigger);
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (calls.length === 1) await new Promise<void>((r) => (release = r));
        active -= 1;
        return { result: outcome };
      },
    });
    loop.start();
    await waitFor(() => calls.length === 1, 'startup run');
    loop.trigger('webhook');
    await new Promise((r) => setTimeout(r, 20));
    loop.trigger('webhook');
    await new Promise((r) => setTimeout(r, 20));
    release();
    await waitFor(() => calls.length === 2, 'one follow-up run');
    await loop.idle();
    expect(calls).toEqual(['startup', 'webhook']);
    expect(maxActive).toBe(1);

    outcome = 'transient';
    loop.trigger('manual');
    await waitFor(() => calls.filter((c) => c === 'retry').length >= 2, 'backoff retries');
    expect(loop.consecutiveFailures).toBeGreaterThanOrEqual(2);
    outcome = 'unchanged';
    await waitFor(() => loop.consecutiveFailures === 0, 'backoff reset after success');
    await loop.stop();
    const n = calls.length;
    loop.trigger('webhook');
    await new Promise((r) => setTimeout(r, 30));
    expect(calls.length).toBe(n);
  });

  test('the first trigger after a quiet period runs at once; the rest of its burst waits for one trailing run', async () => {
    const calls: Trigger[] = [];
    const loop = new ReconcileLoop({
      schedule: { cron: '0 0 1 1 *' },
      // Longer than the test: a run that waited for the window would never come.
      debounceMs: 60_000,
      run: async (trigger) => {
        calls.push(trigger);
        return { result: 'unchanged' };
      },
    });
    loop.start();
    await waitFor(() => calls.length === 1, 'startup run');
    await loop.idle();
    loop.trigger('webhook');
    await waitFor(() => calls.length === 2, 'the leading trigger runs without waiting out the window');
    await loop.idle();
    loop.trigger('webhook');
    loop.trigger('webhook');
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual(['startup', 'webhook']);
    await loop.stop();
  });
});

describe('file-lock leader election', () => {
  test('one holder; heartbeat keeps it; a stale lock is taken over; release frees it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-lock-'));
    dirs.push(dir);
    const path = join(dir, 'leader.lock');
    const timing = { leaseDurationMs: 500, renewIntervalMs: 50 };
    const a = new FileLockElector(path, 'a', timing);
    const b = new FileLockElector(path, 'b', timing);
    await a.start();
    await b.start();
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(JSON.parse(await readFile(path, 'utf8')).holder).toBe('a');
    await new Promise((r) => setTimeout(r, 700)); // longer than the lease: a's heartbeat must keep it
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);

    await a.stop();
    await waitFor(() => b.isLeader(), 'b takes the released lock', 3_000);
    await b.stop();

    // A holder that died without releasing: fresh mtime is respected, an old one is taken over.
    await writeFile(path, JSON.stringify({ holder: 'ghost', pid: 1 }));
    const c = new FileLockElector(path, 'c', timing);
    await c.start();
    expect(c.isLeader()).toBe(false);
    const old = new Date(Date.now() - 10_000);
    await utimes(path, old, old);
    await waitFor(() => c.isLeader(), 'c takes over the stale lock', 3_000);
    expect(JSON.parse(await readFile(path, 'utf8')).holder).toBe('c');
    await c.stop();
    await expect(readFile(path, 'utf8')).rejects.toThrow();
  });
});
