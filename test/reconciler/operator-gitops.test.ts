import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { signWebhookBody } from '../../src/reconciler/webhook.js';
import { git } from '../helpers/git-server.js';
import { getJson, postHook, useOperatorHarness, waitFor } from './helpers/operator-harness.js';

const SECRET = 'webhook-secret-for-tests';
const harness = useOperatorHarness();

describe('operator GitOps loop over real smart HTTP', () => {
  test('notices a push by poll; status commits land on trellis-status, cloned and read with the git CLI', async () => {
    const h = await harness.start();
    const first = await waitFor(() => h.applied[0], 'first apply');
    expect(first.revision.commit).toBe(await git(h.repo.workDir, 'rev-parse', 'HEAD'));
    expect(first.render.clusters.map((c) => c.cluster)).toEqual(['dev', 'prod-us']);

    const sha = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' }, 'dev: upgrade to 1.16.1');
    const second = await waitFor(() => h.applied.find((a) => a.revision.commit === sha), 'poll to apply the pushed commit');
    expect(second.render.clusters.find((c) => c.cluster === 'dev')!.version).toBe('1.16.1');
    expect(second.revision.message).toBe('dev: upgrade to 1.16.1');

    const status = await getJson(`${h.op.url}/v1/status`);
    expect(status.source.lastAppliedCommit).toBe(sha);
    expect(status.clusters.dev).toMatchObject({ observedCommit: sha, desiredVersion: '1.16.1', phase: 'Healthy' });
    expect(status.clusters.dev.conditions[0]).toMatchObject({ type: 'Ready', status: 'True', reason: 'ReconciliationSucceeded' });

    // The status branch, as a human reads it.
    await waitFor(async () => {
      // Read the store first: whatever it holds now is written by the flush that follows.
      const inStore = h.op.status.get('dev')?.observedCommit === sha;
      await h.op.publisher.flush();
      const refs = await git(h.repo.workDir, 'ls-remote', 'origin', 'refs/heads/trellis-status');
      const tip = refs.split('\t')[0];
      return inStore && tip && tip === h.op.gitStatusWriter!.lastCommit ? tip : undefined;
    }, 'status pushed for the second commit');
    const clone = await harness.tmp();
    await git(clone, 'clone', '--quiet', '--branch', 'trellis-status', h.repo.url, 'status');
    const doc = parseYaml(await readFile(join(clone, 'status', 'status', 'dev.yaml'), 'utf8'));
    expect(doc).toMatchObject({ apiVersion: 'trellis.dev/v1alpha1', kind: 'ClusterStatus', metadata: { name: 'dev' }, spec: { cluster: 'dev' }, status: { observedCommit: sha, desiredVersion: '1.16.1', phase: 'Healthy' } });
    const log = (await git(join(clone, 'status'), 'log', '--format=%an|%s')).split('\n');
    expect(log.every((l) => l.startsWith('trellis-operator|'))).toBe(true);
    expect(log[0]).toMatch(/^trellis-operator\|dev: 1\.16\.1 healthy/);
    // Only the operator's status files on that branch, and its history is linear (never rewritten).
    expect((await git(join(clone, 'status'), 'ls-files')).split('\n').sort()).toEqual(['status/dev.yaml', 'status/prod-us.yaml']);
    expect(await git(join(clone, 'status'), 'rev-list', '--merges', 'HEAD')).toBe('');

    // Its own status commits never trigger a reconcile: the applied list does not grow.
    const count = h.applied.length;
    await h.op.reconcileNow();
    await h.op.reconcileNow();
    expect(h.applied.length).toBe(count);
  });

  test('webhook: unsigned or wrongly signed ⇒ 401 and nothing happens; valid ⇒ immediate reconcile', async () => {
    // A schedule far in the future: only the startup run and webhooks reconcile.
    const h = await harness.start({ schedule: { cron: '0 0 1 1 *' }, webhookSecret: SECRET, statusBranch: false });
    await waitFor(() => h.applied[0], 'first apply');
    const sha = await h.repo.commitAndPush({ 'clusters/prod-us.yaml': 'version: "1.16.1"\n' }, 'prod-us: 1.16.1');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });

    expect((await postHook(h.op.url, body, {})).status).toBe(401);
    expect((await postHook(h.op.url, body, { 'x-hub-signature-256': signWebhookBody(body, 'wrong-secret') })).status).toBe(401);
    expect((await postHook(h.op.url, body, { 'x-signature': 'sha256=deadbeef' })).status).toBe(401);
    expect((await postHook(h.op.url, body + ' ', { 'x-hub-signature-256': signWebhookBody(body, SECRET) })).status).toBe(401);
    await h.op.loop.idle();
    expect(h.applied.some((a) => a.revision.commit === sha)).toBe(false);

    // A push to the operator's own status branch is acknowledged and ignored.
    const own = JSON.stringify({ ref: 'refs/heads/trellis-status' });
    const ignored = await postHook(h.op.url, own, { 'x-hub-signature-256': signWebhookBody(own, SECRET) });
    expect(ignored.status).toBe(202);
    expect(await ignored.json()).toMatchObject({ status: 'ignored' });
    await h.op.loop.idle();
    expect(h.applied.some((a) => a.revision.commit === sha)).toBe(false);

    const ok = await postHook(h.op.url, body, { 'x-hub-signature-256': signWebhookBody(body, SECRET), 'x-github-event': 'push' });
    expect(ok.status).toBe(202);
    await waitFor(() => h.applied.find((a) => a.revision.commit === sha), 'webhook-triggered apply', 3_000);

    // The generic X-Signature form works too.
    const sha2 = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' });
    const ok2 = await postHook(h.op.url, '{}', { 'x-signature': signWebhookBody('{}', SECRET) });
    expect(ok2.status).toBe(202);
    await waitFor(() => h.applied.find((a) => a.revision.commit === sha2), 'generic-signed webhook apply', 3_000);

    const metrics = await (await fetch(`${h.op.url}/metrics`)).text();
    expect(metrics).toMatch(/trellis_webhook_requests_total\{result="rejected"\} 4/);
    expect(metrics).toMatch(/trellis_webhook_requests_total\{result="accepted"\} 2/);
  });

});
