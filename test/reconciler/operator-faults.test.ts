import { describe, expect, test } from '@jest/globals';
import { GIT_FAULTS, statusJson, useOperatorHarness, waitFor } from './helpers/operator-harness.js';

const harness = useOperatorHarness();

describe('operator under git server faults: keeps the last good config, reports, never crashes, recovers', () => {
  test.each(GIT_FAULTS)('$fault', async ({ fault, reason, message }) => {
    const h = await harness.start({ timeoutMs: 400, statusBranch: false });
    const good = await waitFor(() => h.applied[0], 'first apply');
    await h.repo.server.setFault(fault);
    await waitFor(() => h.op.status.source.fault?.reason === reason, `fault ${reason} in status`);
    // Pushed while the server is faulty (straight into the bare repo): noticed after recovery.
    const next = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' }, 'during fault', [], 'disk');

    const s = await statusJson(h);
    expect(s.source.fault).toMatchObject({ reason });
    expect(s.source.fault.message).toMatch(message);
    expect(s.source.lastAppliedCommit).toBe(good.revision.commit);
    for (const cluster of ['dev', 'prod-us']) {
      expect(s.clusters[cluster]).toMatchObject({ phase: 'Healthy', observedCommit: good.revision.commit, desiredVersion: '1.15.4' });
      expect(s.clusters[cluster].conditions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'FetchFailed', status: 'True', reason }),
          expect.objectContaining({ type: 'Ready', status: 'False', reason }),
          expect.objectContaining({ type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry' }),
        ]),
      );
    }
    expect(h.op.reconciler.lastGood!.revision.commit).toBe(good.revision.commit);
    expect((await fetch(`${h.op.url}/healthz`)).status).toBe(200);
    const failures = h.op.loop.consecutiveFailures;
    expect(failures).toBeGreaterThanOrEqual(1);

    await h.repo.server.setFault(null);
    await waitFor(() => h.applied.find((a) => a.revision.commit === next), 'apply after recovery');
    await waitFor(() => h.op.status.source.fault === undefined, 'fault cleared');
    const after = h.op.status.get('dev')!;
    expect(after).toMatchObject({ desiredVersion: '1.16.1', observedCommit: next, phase: 'Healthy' });
    expect(after.conditions!.map((c) => `${c.type}=${c.status}`)).toEqual(['Ready=True']);
    const metrics = await (await fetch(`${h.op.url}/metrics`)).text();
    expect(metrics).toContain(`trellis_reconcile_errors_total{reason="${reason}"}`);
  });

});
