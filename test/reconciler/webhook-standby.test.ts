import { describe, expect, test } from '@jest/globals';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signWebhookBody } from '../../src/reconciler/webhook.js';
import { postHook, useOperatorHarness, waitFor } from './helpers/operator-harness.js';

const SECRET = 'standby-webhook-secret';
const harness = useOperatorHarness();

describe('webhook on a replica that is not the leader', () => {
  test('answers a verified push 503 with Retry-After and triggers nothing; the leader accepts it again', async () => {
    const h = await harness.start({
      schedule: { cron: '0 0 1 1 *' }, // only the startup run and webhooks reconcile
      webhookSecret: SECRET,
      statusBranch: false,
      leaderElection: 'file',
      identity: 'replica-a',
      leaderTiming: { leaseDurationMs: 60_000, renewIntervalMs: 100 },
    });
    await waitFor(() => h.applied[0], 'first apply as the leader');
    const lock = join(h.stateDir, 'leader.lock');
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ holder: 'replica-a' });

    // Another replica holds the lock now: this one steps down at its next renewal.
    await writeFile(lock, JSON.stringify({ holder: 'replica-b', pid: 1, acquiredAt: new Date().toISOString() }) + '\n');
    await waitFor(() => !h.op.elector.isLeader(), 'stepped down');
    const sha = await h.repo.commitAndPush({ 'clusters/prod-us.yaml': 'version: "1.16.1"\n' }, 'prod-us: 1.16.1');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
    const sign = { 'x-hub-signature-256': signWebhookBody(body, SECRET), 'x-github-event': 'push' };

    // The signature is still checked first: a standby does not tell strangers anything more.
    expect((await postHook(h.op.url, body, { 'x-hub-signature-256': signWebhookBody(body, 'wrong') })).status).toBe(401);
    const standby = await postHook(h.op.url, body, sign);
    expect(standby.status).toBe(503);
    expect(standby.headers.get('retry-after')).toBe('1');
    expect(await standby.json()).toMatchObject({ error: expect.stringMatching(/replica-a\) is not the leader/) });
    expect(h.applied.some((a) => a.revision.commit === sha)).toBe(false);

    // Leadership comes back (the other replica released the lock): the retried push is accepted.
    await unlink(lock);
    await waitFor(() => h.op.elector.isLeader(), 'leader again');
    const retried = await postHook(h.op.url, body, sign);
    expect(retried.status).toBe(202);
    await waitFor(() => h.applied.find((a) => a.revision.commit === sha), 'the retried push applied', 5_000);
    const metrics = await (await fetch(`${h.op.url}/metrics`)).text();
    expect(metrics).toMatch(/trellis_webhook_requests_total\{result="standby"\} 1/);
  });
});
