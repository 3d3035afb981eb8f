import { describe, expect, test } from '@jest/globals';
import { loadRepositoryFromDir } from '../../src/render/repository.js';
import { useOperatorHarness, waitFor } from './helpers/operator-harness.js';
import { sampleRepoFiles } from './helpers/sample-repo.js';

const harness = useOperatorHarness();
const DEV_OVERLAY = 'kustomize/overlays/dev/kustomization.yaml';

function ratingsTimeout(render: { clusters: Array<{ cluster: string; objects: Array<{ kind: string; metadata: { name?: string }; spec: unknown }> }> }): unknown {
  const vs = render.clusters.find((c) => c.cluster === 'dev')!.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'ratings')!;
  return (vs.spec as { http: Array<{ timeout?: string }> }).http[0]!.timeout;
}

describe('reconciler renders: cached across commits, from the checkout in memory', () => {
  test('a commit that changes one overlay re-renders it and reuses everything else', async () => {
    const files = await sampleRepoFiles();
    expect(files[DEV_OVERLAY]).toMatch(/value: 2s/);
    const h = await harness.start({ files, statusBranch: false });
    const first = await waitFor(() => h.applied[0], 'first apply', 20_000);
    expect(ratingsTimeout(first.render)).toBe('2s');
    const cold = { ...h.op.reconciler.renderCache.stats };
    expect(cold.builds).toBeGreaterThan(0);

    const sha = await h.repo.commitAndPush({ [DEV_OVERLAY]: files[DEV_OVERLAY]!.replace('value: 2s', 'value: 2500ms') }, 'dev: ratings timeout 2.5 s');
    const second = await waitFor(() => h.applied.find((a) => a.revision.commit === sha), 'the change applied', 20_000);
    expect(ratingsTimeout(second.render)).toBe('2500ms');
    expect(ratingsTimeout(first.render)).toBe('2s');
    const warm = h.op.reconciler.renderCache.stats;
    // Only the dev overlay's build ran again; the other clusters' builds came from the cache.
    expect(warm.builds - cold.builds).toBe(1);
    expect(warm.buildHits - cold.buildHits).toBeGreaterThanOrEqual(3);
    // Rendered from the checkout's files in memory: the same as rendering the snapshot on disk.
    expect(JSON.parse(JSON.stringify(second.render))).toEqual(JSON.parse(JSON.stringify(await loadRepositoryFromDir(second.revision.snapshotDir))));
  });

  test('an invalid commit rendered from memory is refused with file:line, and the next one recovers', async () => {
    const files = await sampleRepoFiles();
    const h = await harness.start({ files, statusBranch: false });
    const good = await waitFor(() => h.applied[0], 'first apply', 20_000);
    await h.repo.commitAndPush({ [DEV_OVERLAY]: files[DEV_OVERLAY]!.replace('value: 2s', 'value: soon') }, 'dev: a timeout that is no duration');
    await waitFor(() => h.op.status.get('dev')?.phase === 'InvalidConfig', 'InvalidConfig', 20_000);
    expect(h.op.status.get('dev')!.errors!.join('\n')).toMatch(/kustomize\/overlays\/dev\/kustomization\.yaml:\d+:\d+: error: VirtualService bookinfo\/ratings spec\.http\[0\]\.timeout: invalid duration "soon"/);
    expect(h.op.reconciler.lastGood!.revision.commit).toBe(good.revision.commit);
    const fixed = await h.repo.commitAndPush({ [DEV_OVERLAY]: files[DEV_OVERLAY]!.replace('value: 2s', 'value: 3s') }, 'dev: ratings timeout 3 s');
    const applied = await waitFor(() => h.applied.find((a) => a.revision.commit === fixed), 'the fix applied', 20_000);
    expect(ratingsTimeout(applied.render)).toBe('3s');
  });
});
