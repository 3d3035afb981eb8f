import { describe, expect, test } from '@jest/globals';
import { git, writeFiles } from '../helpers/git-server.js';
import { statusJson, useOperatorHarness, waitFor } from './helpers/operator-harness.js';

const harness = useOperatorHarness();

describe('operator recovery: credentials, shutdown, refusing subscribers, rewritten history', () => {
  test('credentials are sent, and never appear in logs, status or metrics, even on failure', async () => {
    const password = 'p4ss-w0rd-never-logged';
    const h = await harness.start({ serverAuth: { username: 'bot', password }, auth: { type: 'basic', username: 'bot', password }, timeoutMs: 400 });
    await waitFor(() => h.applied[0], 'first apply with basic auth');
    await h.repo.server.setFault('wrong-credentials');
    await waitFor(() => h.op.status.source.fault?.reason === 'AuthenticationFailed', 'auth failure reported');
    await h.repo.server.setFault(null);
    await waitFor(() => h.op.status.source.fault === undefined, 'recovered');
    const everything = JSON.stringify(h.logs) + JSON.stringify(await statusJson(h)) + (await (await fetch(`${h.op.url}/metrics`)).text());
    expect(everything).not.toContain(password);
    expect(everything).not.toContain(Buffer.from(`bot:${password}`).toString('base64'));
  });

  test('shutdown while git hangs: in-flight git calls are cancelled, no fault is reported, stop returns', async () => {
    const h = await harness.start({ timeoutMs: 120_000, statusBranch: false });
    await waitFor(() => h.applied[0], 'first apply');
    await h.repo.server.setFault('hang');
    await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' }, 'x', [], 'disk');
    h.op.loop.trigger('manual');
    // The run is now stuck on the hanging server (a request was accepted and never answered).
    await waitFor(() => h.repo.server.stats().hanging > 0, 'a git request hanging');
    await h.op.stop(); // would take the 120 s deadline without cancellation (jest fails at 30 s)
    expect(h.op.status.source.fault).toBeUndefined();
    expect(h.logs.some((l) => l.msg === 'reconcile cancelled (operator stopping)')).toBe(true);
  });

  test('a subscriber that refuses a commit: ApplyFailed, retried with backoff, then applied', async () => {
    const h = await harness.start({ statusBranch: false });
    await waitFor(() => h.applied[0], 'first apply');
    let refusals = 0;
    let target = '';
    h.op.onApply((_render, rev) => {
      if (rev.commit === target && refusals < 2) {
        refusals += 1;
        throw new Error('discovery not ready');
      }
    });
    target = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' });
    await waitFor(() => h.op.status.get('dev')?.conditions?.some((c) => c.type === 'ApplyFailed' && c.status === 'True'), 'ApplyFailed condition');
    expect(h.op.status.source.fault?.message).toMatch(/discovery not ready/);
    await waitFor(() => h.op.reconciler.lastGood?.revision.commit === target, 'applied after retries');
    expect(refusals).toBe(2);
    expect(h.op.status.get('dev')!.conditions!.map((c) => c.type)).toEqual(['Ready']);
  });

  test('force-push (rewritten history) is detected, reported and applied', async () => {
    const h = await harness.start({ statusBranch: false });
    await waitFor(() => h.applied[0], 'first apply');
    const doomed = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.0"\n' }, 'doomed');
    await waitFor(() => h.applied.find((a) => a.revision.commit === doomed), 'apply doomed');
    await git(h.repo.workDir, 'reset', '--quiet', '--hard', 'HEAD~1');
    await writeFiles(h.repo.workDir, { 'clusters/dev.yaml': 'version: "1.16.1"\n' });
    await git(h.repo.workDir, 'commit', '--quiet', '-am', 'rewritten');
    await git(h.repo.workDir, 'push', '--quiet', '--force', 'origin', 'main');
    const rewritten = await git(h.repo.workDir, 'rev-parse', 'HEAD');
    const applied = await waitFor(() => h.applied.find((a) => a.revision.commit === rewritten), 'apply after force-push');
    expect(applied.revision.historyRewritten).toBe(true);
    expect(h.op.status.source.historyRewritten).toMatchObject({ from: doomed, to: rewritten });
    expect(h.op.status.get('dev')).toMatchObject({ desiredVersion: '1.16.1', observedCommit: rewritten });
    expect(h.logs.some((l) => l.msg === 'tracked ref history was rewritten (force-push)')).toBe(true);
  });
});
