import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DiscoveryClient } from '../../src/discovery/client.js';
import { EndpointRegistry, loadEndpointRegistryFile, saveEndpointRegistryFile } from '../../src/discovery/endpoint-registry.js';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryServer, DiscoveryServerOptions } from '../../src/discovery/server.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import type { WorkloadEndpoint } from '../../src/render/types.js';
import { ClientPool, waitFor } from './helpers.js';
import { identity, syntheticConfig, syntheticRender } from './synthetic-mesh.js';
import type { SyntheticConfig } from './synthetic-mesh.js';

const servers: DiscoveryServer[] = [];
const pool = new ClientPool();
const dirs: string[] = [];

afterEach(async () => {
  await pool.stopAll();
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-registry-'));
  dirs.push(dir);
  return dir;
}

async function startServer(config: SyntheticConfig, extra: Partial<DiscoveryServerOptions>): Promise<{ url: string; server: DiscoveryServer }> {
  const server = createDiscoveryServer({ render: syntheticRender(config), debounceMs: 20, ...extra });
  servers.push(server);
  const { url } = await server.listen(0);
  return { url, server };
}

/** `service address` of every endpoint a proxy runs. */
function endpointsIn(snapshot: ProxySnapshot | null | undefined): string[] {
  return (snapshot?.endpoints ?? []).flatMap((a) => a.endpoints.map((e) => `${a.cluster.split('|')[3]!.split('.')[0]} ${e.address}`)).sort();
}

async function restoredGauge(server: DiscoveryServer): Promise<number> {
  return (await server.metrics.restoredEndpoints.get()).values[0]?.value ?? 0;
}

async function fileEndpoints(file: string): Promise<string[]> {
  try {
    const content = JSON.parse(await readFile(file, 'utf8')) as { endpoints: Array<{ proxyId: string }> };
    return content.endpoints.map((e) => e.proxyId);
  } catch {
    return [];
  }
}

const reviews = identity('c1', 'a', 'reviews', '0', 'reviews');
const ratings = identity('c1', 'a', 'ratings', '0', 'ratings');
const reviewsEndpoint = { address: '10.1.0.1', port: 9080, labels: { app: 'reviews' } };
const ratingsEndpoint = { address: '10.1.0.2', port: 9080, labels: { app: 'ratings' } };

describe('persisted endpoint registry across an operator restart', () => {
  it('a restarted operator pushes every endpoint at once; one whose proxy never returns is removed after the grace period', async () => {
    const file = join(await tempDir(), 'discovery', 'endpoints.json');
    const config = syntheticConfig(['a'], 0);
    const options: Partial<DiscoveryServerOptions> = { endpointStateFile: file, persistEveryMs: 20, endpointGraceMs: 1_500, sweepIntervalMs: 20 };
    const first = await startServer(config, options);
    const watcher = pool.start(first.url, identity('c1', 'a', 'watcher', '0'));
    const clients: DiscoveryClient[] = [pool.start(first.url, reviews, { endpoint: reviewsEndpoint }), pool.start(first.url, ratings, { endpoint: ratingsEndpoint })];
    await waitFor(() => endpointsIn(watcher.running).length === 2, 'the watcher sees both endpoints');
    // Written by the sweep while the operator runs (a kill -9 would find this file), not only at close.
    await waitFor(async () => (await fileEndpoints(file)).length === 2, 'registry persisted');
    expect(await fileEndpoints(file)).toEqual([ratings.id, reviews.id]);
    const watcherRuns = watcher.running;
    await watcher.stop();
    for (const c of clients) await c.stop();
    await first.server.close();

    const second = await startServer(config, { ...options, restartHoldMs: 0 });
    expect(second.server.endpoints().map((e) => e.proxyId)).toEqual([ratings.id, reviews.id]);
    expect(await restoredGauge(second.server)).toBe(2);
    // A proxy that outlived the restart runs the snapshot the new operator renders: nothing to send.
    const survivor = pool.start(second.url, identity('c1', 'a', 'watcher', '0'), { initialSnapshot: watcherRuns });
    // A new proxy's first snapshot already holds the endpoints of proxies that have not reconnected.
    const firstSnapshots: ProxySnapshot[] = [];
    const fresh = pool.start(second.url, identity('c1', 'a', 'fresh', '0'), {
      apply: (snapshot) => {
        firstSnapshots.push(snapshot);
        return { ok: true };
      },
    });
    await waitFor(() => firstSnapshots.length >= 1, 'the new proxy got its first snapshot');
    expect(endpointsIn(firstSnapshots[0])).toEqual(['ratings 10.1.0.2', 'reviews 10.1.0.1']);
    await second.server.flush();
    expect(survivor.connected).toBe(true);
    expect(survivor.counters.snapshots).toBe(0);
    expect(second.server.findProxy('watcher/0')?.sync).toBe('SYNCED');

    // reviews comes back (same endpoint: no change, no push); ratings never does.
    const back = pool.start(second.url, reviews, { endpoint: reviewsEndpoint });
    await waitFor(() => back.connected, 'reviews reconnected');
    await waitFor(async () => (await restoredGauge(second.server)) === 1, 'reviews confirmed its restored endpoint');
    await waitFor(() => endpointsIn(fresh.running).length === 1, 'the ratings endpoint removed after the grace period');
    expect(endpointsIn(fresh.running)).toEqual(['reviews 10.1.0.1']);
    expect(second.server.endpoints().map((e) => e.proxyId)).toEqual([reviews.id]);
    expect(await restoredGauge(second.server)).toBe(0);
    await waitFor(async () => (await fileEndpoints(file)).length === 1, 'the file follows');
    expect(await fileEndpoints(file)).toEqual([reviews.id]);
  });

  it('drops a restored endpoint at once when its proxy comes back without one', async () => {
    const file = join(await tempDir(), 'endpoints.json');
    await saveEndpointRegistryFile(file, [{ proxyId: reviews.id, endpoint: { service: 'reviews', namespace: 'a', address: '10.1.0.1', port: 9080, labels: {}, tlsMode: 'istio', proxyId: reviews.id } }]);
    const { url, server } = await startServer(syntheticConfig(['a'], 0), { endpointStateFile: file, endpointGraceMs: 60_000 });
    expect(server.endpoints()).toHaveLength(1);
    const back = pool.start(url, reviews); // no endpoint in its hello any more
    await waitFor(() => back.connected, 'reconnected');
    await waitFor(() => server.endpoints().length === 0, 'the stale endpoint removed without waiting for the grace period');
  });

  it('keeps the restart hold only when there is no registry to restore (missing or damaged file)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'endpoints.json');
    await writeFile(file, '{"version": 1, "endpoints": [{"proxyId": "c1/a/x/0"}]}');
    const config = syntheticConfig(['a'], 1);
    const damaged = await startServer(config, { endpointStateFile: file, restartHoldMs: 60_000 });
    const onDamaged = pool.start(damaged.url, identity('c1', 'a', 'w', '0'), { initialSnapshot: syntheticRender(config)(identity('c1', 'a', 'w', '0'), []) as ProxySnapshot });
    await waitFor(() => onDamaged.connected, 'connected');
    config.timeouts['a/svc-0'] = 7;
    damaged.server.configChanged('change while held');
    await damaged.server.flush();
    expect(onDamaged.counters.snapshots).toBe(0); // held: no registry was restored
    await pool.stopAll();

    await saveEndpointRegistryFile(file, []);
    const restored = await startServer(config, { endpointStateFile: file, restartHoldMs: 60_000 });
    const onRestored = pool.start(restored.url, identity('c1', 'a', 'w', '0'), { initialSnapshot: syntheticRender(syntheticConfig(['a'], 1))(identity('c1', 'a', 'w', '0'), []) as ProxySnapshot });
    await waitFor(() => onRestored.counters.snapshots === 1, 'served at once: the registry was restored');
  });
});

describe('endpoint registry file and provisional entries', () => {
  const endpoint = (address: string, proxyId: string): WorkloadEndpoint => ({ service: 'reviews', namespace: 'a', address, port: 9080, labels: { app: 'reviews' }, tlsMode: 'istio', proxyId });

  it('writes readable JSON atomically (no temp file left) and reads it back', async () => {
    const dir = await tempDir();
    const file = join(dir, 'sub', 'endpoints.json');
    await saveEndpointRegistryFile(file, [{ proxyId: 'c1/a/r/0', endpoint: endpoint('10.0.0.1', 'c1/a/r/0') }], Date.parse('2026-01-02T03:04:05Z'));
    await saveEndpointRegistryFile(file, [{ proxyId: 'c1/a/r/1', endpoint: endpoint('10.0.0.2', 'c1/a/r/1') }], Date.parse('2026-01-02T03:04:06Z'));
    expect(await readdir(join(dir, 'sub'))).toEqual(['endpoints.json']);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('\n  "savedAt": "2026-01-02T03:04:06.000Z"');
    expect(await loadEndpointRegistryFile(file)).toEqual({ found: true, savedAt: '2026-01-02T03:04:06.000Z', endpoints: [{ proxyId: 'c1/a/r/1', endpoint: endpoint('10.0.0.2', 'c1/a/r/1') }] });
    expect(await loadEndpointRegistryFile(join(dir, 'absent.json'))).toEqual({ found: false });
    await writeFile(file, '{"version": 1, "endpoints": [{"proxyId": "p", "endpoint": {"service": "s"}}]}');
    const damaged = await loadEndpointRegistryFile(file);
    expect(damaged.found).toBe(false);
    expect(!damaged.found && damaged.error).toMatch(/endpoints\.json: endpoints\[0\]: expected/);
  });

  it('restored entries are provisional: confirmed by a registration, removed at their deadline otherwise', () => {
    const registry = new EndpointRegistry();
    registry.register('live', endpoint('10.0.0.9', 'live'));
    const restored = registry.restore(
      [
        { proxyId: 'live', endpoint: endpoint('10.0.0.8', 'live') },
        { proxyId: 'back', endpoint: endpoint('10.0.0.1', 'back') },
        { proxyId: 'gone', endpoint: endpoint('10.0.0.2', 'gone') },
      ],
      1_000,
    );
    expect(restored).toBe(2); // a proxy registered in this run keeps its own endpoint
    expect(registry.list().map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.9']);
    expect(registry.register('back', endpoint('10.0.0.1', 'back'))).toBe(false); // same endpoint: confirmed, no change
    expect(registry.isProvisional('back')).toBe(false);
    expect(registry.expire(999)).toEqual([]);
    expect(registry.expire(1_000)).toEqual(['gone']);
    expect(registry.list().map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.9']);
    expect(registry.provisionalCount).toBe(0);
  });
});
