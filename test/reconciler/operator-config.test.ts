import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { git } from '../helpers/git-server.js';
import { getJson, useOperatorHarness, waitFor } from './helpers/operator-harness.js';

const harness = useOperatorHarness();

describe('operator config changes: invalid commits, removed clusters, concurrent status writers', () => {
  test('an invalid commit is refused as a whole (InvalidConfig with file:line); the next valid one recovers', async () => {
    const h = await harness.start({ statusBranch: false });
    const good = await waitFor(() => h.applied[0], 'first apply');
    const bad = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n', 'clusters/prod-us.yaml': 'version: [unclosed\n' }, 'broken prod-us');
    await waitFor(() => h.op.status.get('prod-us')?.phase === 'InvalidConfig', 'InvalidConfig');
    const s = await getJson(`${h.op.url}/v1/status`);
    for (const cluster of ['dev', 'prod-us']) {
      expect(s.clusters[cluster].phase).toBe('InvalidConfig');
      expect(s.clusters[cluster].observedCommit).toBe(good.revision.commit);
      expect(s.clusters[cluster].errors.join('\n')).toMatch(/clusters\/prod-us\.yaml:\d+:\d+: error/);
      expect(s.clusters[cluster].conditions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'Ready', status: 'False', reason: 'InvalidConfig' }),
          expect.objectContaining({ type: 'Stalled', status: 'True', reason: 'InvalidConfig' }),
        ]),
      );
    }
    expect(s.source).toMatchObject({ lastAppliedCommit: good.revision.commit, refused: { commit: bad } });
    // Nothing of the bad commit was handed on, not even dev's valid part.
    expect(h.applied.map((a) => a.revision.commit)).toEqual([good.revision.commit]);
    expect(h.op.reconciler.lastGood!.revision.commit).toBe(good.revision.commit);

    const fixed = await h.repo.commitAndPush({ 'clusters/prod-us.yaml': 'version: "1.16.1"\n' }, 'fix prod-us');
    await waitFor(() => h.applied.find((a) => a.revision.commit === fixed), 'recovery apply');
    const after = h.op.status.get('prod-us')!;
    expect(after).toMatchObject({ phase: 'Healthy', desiredVersion: '1.16.1', observedCommit: fixed });
    expect(after.errors).toBeUndefined();
    expect(after.conditions!.find((c) => c.type === 'Stalled')).toBeUndefined();
    expect(h.logs.some((l) => l.msg === 'commit refused; last good config stays in force' && l.commit === bad)).toBe(true);
  });

  test('a cluster removed from the fleet loses its status file on the status branch', async () => {
    const h = await harness.start({ versions: { dev: '1.15.4', 'prod-us': '1.15.4', 'prod-eu': '1.15.4' } });
    await waitFor(() => h.applied[0], 'first apply');
    const files = async () => {
      await h.op.publisher.flush();
      const tip = (await git(h.repo.workDir, 'ls-remote', 'origin', 'refs/heads/trellis-status')).split('\t')[0];
      if (!tip || tip !== h.op.gitStatusWriter!.lastCommit) return undefined;
      await git(h.repo.workDir, 'fetch', '--quiet', 'origin', 'trellis-status');
      return (await git(h.repo.workDir, 'ls-tree', '--name-only', 'FETCH_HEAD', 'status/')).split('\n');
    };
    await waitFor(async () => (await files())?.length === 3, 'three status files');
    const { miniRepoFiles } = await import('./helpers/mini-repo.js');
    const sha = await h.repo.commitAndPush({ 'trellis.yaml': miniRepoFiles({ dev: '1.15.4', 'prod-us': '1.15.4' })['trellis.yaml']! }, 'drop prod-eu', ['clusters/prod-eu.yaml']);
    await waitFor(() => h.applied.find((a) => a.revision.commit === sha), 'apply');
    expect(h.op.status.clusters()).toEqual(['dev', 'prod-us']);
    const after = await waitFor(async () => {
      const f = await files();
      return f && !f.includes('status/prod-eu.yaml') ? f : undefined;
    }, 'prod-eu status file deleted');
    expect(after).toEqual(['status/dev.yaml', 'status/prod-us.yaml']);
    expect(await git(h.repo.workDir, 'log', '-1', '--format=%B', 'FETCH_HEAD')).toContain('prod-eu');
  });

  test('a concurrent push to the status branch is kept: the operator rebuilds its commit on the new tip', async () => {
    const h = await harness.start();
    await waitFor(() => h.applied[0], 'first apply');
    await waitFor(async () => {
      await h.op.publisher.flush();
      return h.op.gitStatusWriter!.lastCommit;
    }, 'first status commit');
    // Someone else commits to trellis-status (a note), so the operator's local view is stale.
    const other = await harness.tmp();
    await git(other, 'clone', '--quiet', '--branch', 'trellis-status', h.repo.url, 'st');
    await git(join(other, 'st'), 'commit', '--quiet', '--allow-empty', '-m', 'human note on the status branch');
    await git(join(other, 'st'), 'push', '--quiet', 'origin', 'trellis-status');
    const humanTip = await git(join(other, 'st'), 'rev-parse', 'HEAD');

    const sha = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' });
    await waitFor(() => h.applied.find((a) => a.revision.commit === sha), 'apply');
    await waitFor(async () => {
      await h.op.publisher.flush();
      const tip = (await git(h.repo.workDir, 'ls-remote', 'origin', 'refs/heads/trellis-status')).split('\t')[0];
      return tip !== humanTip && tip === h.op.gitStatusWriter!.lastCommit;
    }, 'status commit on top of the human commit');
    await git(join(other, 'st'), 'pull', '--quiet', '--ff-only', 'origin', 'trellis-status');
    await git(join(other, 'st'), 'merge-base', '--is-ancestor', humanTip, 'HEAD');
    expect(await git(join(other, 'st'), 'log', '-1', '--format=%an')).toBe('trellis-operator');
  });
});
