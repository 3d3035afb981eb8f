import { afterEach, describe, expect, jest, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startDiscoveryClient, type DiscoveryClient } from '../../src/discovery/client.js';
import { ControlPlane } from '../../src/reconciler/control-plane.js';
import { VersionRenders } from '../../src/reconciler/version-renders.js';
import { createRenderCache } from '../../src/render/cache.js';
import { loadRepositoryFromDir } from '../../src/render/repository.js';
import { serveRepo, writeFiles, type ServedRepo } from '../helpers/git-server.js';
import { waitFor } from './helpers/operator-harness.js';
import { sampleRepoFiles } from './helpers/sample-repo.js';

const DEV_OVERLAY = 'kustomize/overlays/dev/kustomization.yaml';
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  jest.restoreAllMocks();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-cp-costs-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ratingsTimeoutMs(client: DiscoveryClient): number | undefined {
  const vhost = client.running?.routeConfigs.flatMap((r) => r.virtualHosts).find((v) => v.domains.some((d) => d.startsWith('ratings')));
  return vhost?.routes[0]?.timeoutMs;
}

describe('control plane costs seen in profiles', () => {
  test('a rollout tick reads discovery status once; a new commit builds the cluster index on the previous one', async () => {
    const files = await sampleRepoFiles();
    expect(files[DEV_OVERLAY]).toMatch(/value: 2s/);
    const repo: ServedRepo = await serveRepo({ files });
    cleanups.push(() => repo.close());
    const cp = new ControlPlane({
      repo: repo.url,
      stateDir: await tempDir(),
      schedule: { intervalMs: 200 },
      timeoutMs: 2_000,
      leaderElection: 'none',
      statusBranch: false,
      security: false,
      rolloutTickMs: 600_000, // ticks are run by the test
      discovery: { debounceMs: 20 },
      logger: pino({ level: 'silent' }),
    });
    await cp.start();
    cleanups.push(() => cp.stop());
    const clients = ['dev', 'staging', 'prod-us'].map((cluster) => {
      const client = startDiscoveryClient({
        url: cp.discoveryUrl,
        identity: { id: `${cluster}/bookinfo/productpage-v1/0`, cluster, namespace: 'bookinfo', workload: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, service: 'productpage', serviceAccount: 'bookinfo-productpage', mode: 'sidecar' },
        apply: () => ({ ok: true }),
        heartbeatMs: 60_000,
        backoff: { initialMs: 20, maxMs: 200 },
      });
      cleanups.push(() => client.stop());
      return client;
    });
    await waitFor(() => clients.every((c) => c.running !== null), 'every proxy got its snapshot', 20_000);
    const dev = clients[0]!;
    expect(ratingsTimeoutMs(dev)).toBe(2_000);

    const status = jest.spyOn(cp.discovery, 'status');
    await cp.tick();
    expect(cp.managedClusters().length).toBeGreaterThan(1);
    expect(status).toHaveBeenCalledTimes(1); // was once per cluster (publishing status), plus the rollout's own reads

    const built = { ...cp.indexBuilds };
    expect(built.full).toBeGreaterThanOrEqual(3);
    await repo.commitAndPush({ [DEV_OVERLAY]: files[DEV_OVERLAY]!.replace('value: 2s', 'value: 2500ms') }, 'dev: ratings timeout 2.5 s');
    await waitFor(() => ratingsTimeoutMs(dev) === 2_500, 'the dev proxy runs the new commit', 20_000);
    // Every cluster's index was rebuilt for the new commit, incrementally: none from scratch.
    expect(cp.indexBuilds.full).toBe(built.full);
    expect(cp.indexBuilds.incremental - built.incremental).toBeGreaterThanOrEqual(3);
  });

  test('a render of another mesh version re-builds only the overlay it points back, through the reconciler render cache', async () => {
    const dir = await tempDir();
    await writeFiles(dir, await sampleRepoFiles());
    const cache = createRenderCache();
    const render = await loadRepositoryFromDir(dir, { cache });
    expect(render.clusters.find((c) => c.cluster === 'dev')?.version).toBe('1.15.4');
    const renders = new VersionRenders(cache);
    renders.setCommit('c1', dir, render);
    const before = { ...cache.stats };
    const dev = await renders.get('dev', '1.16.1');
    expect(dev.version).toBe('1.16.1');
    const after = cache.stats;
    expect(after.builds - before.builds).toBe(1); // dev's overlay, pointed at 1.16.1
    expect(after.buildHits - before.buildHits).toBeGreaterThanOrEqual(3); // the other clusters' builds
  });
});
