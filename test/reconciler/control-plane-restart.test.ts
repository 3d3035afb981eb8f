import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startDiscoveryClient, type DiscoveryClient, type DiscoveryClientOptions } from '../../src/discovery/client.js';
import type { ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import { ControlPlane } from '../../src/reconciler/control-plane.js';
import { serveRepo } from '../helpers/git-server.js';
import { waitFor } from './helpers/operator-harness.js';
import { sampleRepoFiles } from './helpers/sample-repo.js';

const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sidecar(workload: string, app: string, version: string, serviceAccount: string): ProxyIdentity {
  return { id: `dev/bookinfo/${workload}/0`, cluster: 'dev', namespace: 'bookinfo', workload, labels: { app, version }, service: app, serviceAccount, mode: 'sidecar' };
}

/** Addresses of a service's endpoints in a snapshot (all its clusters, subsets included). */
function addressesOf(snapshot: ProxySnapshot | null | undefined, service: string): string[] {
  return [...new Set((snapshot?.endpoints ?? []).filter((a) => a.cluster.includes(`|${service}.bookinfo.`)).flatMap((a) => a.endpoints.map((e) => e.address)))].sort();
}

describe('control plane restart with the persisted endpoint registry', () => {
  test('the restarted control plane serves the endpoints of proxies that have not reconnected yet, from its state dir', async () => {
    const repo = await serveRepo({ files: await sampleRepoFiles() });
    cleanups.push(() => repo.close());
    const stateDir = await mkdtemp(join(tmpdir(), 'trellis-cp-restart-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const start = async (): Promise<ControlPlane> => {
      const cp = new ControlPlane({
        repo: repo.url,
        stateDir,
        schedule: { intervalMs: 500 },
        timeoutMs: 2_000,
        leaderElection: 'none',
        statusBranch: false,
        security: false,
        discovery: { debounceMs: 20 },
        logger: pino({ level: 'silent' }),
      });
      await cp.start();
      return cp;
    };
    const clients: DiscoveryClient[] = [];
    const connect = (cp: ControlPlane, identity: ProxyIdentity, extra: Partial<DiscoveryClientOptions> = {}): DiscoveryClient => {
      const client = startDiscoveryClient({ url: cp.discoveryUrl, identity, apply: () => ({ ok: true }), heartbeatMs: 60_000, backoff: { initialMs: 20, maxMs: 200 }, ...extra });
      clients.push(client);
      return client;
    };
    cleanups.push(async () => {
      for (const c of clients) await c.stop();
    });

    const first = await start();
    let running = true;
    cleanups.push(async () => {
      if (running) await first.stop();
    });
    const reviews = connect(first, sidecar('reviews-v1', 'reviews', 'v1', 'bookinfo-reviews'), { endpoint: { address: '10.7.0.1', port: 9080 } });
    const watcher = connect(first, sidecar('productpage-v1', 'productpage', 'v1', 'bookinfo-productpage'));
    await waitFor(() => addressesOf(watcher.running, 'reviews').includes('10.7.0.1'), 'productpage sees the reviews endpoint', 20_000);
    const file = join(stateDir, 'discovery', 'endpoints.json');
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('10.7.0.1'), 'registry persisted in the state dir');
    await reviews.stop();
    await watcher.stop();
    await first.stop();
    running = false;

    const second = await start();
    cleanups.push(() => second.stop());
    const firstSnapshots: ProxySnapshot[] = [];
    connect(second, sidecar('details-v1', 'details', 'v1', 'bookinfo-details'), {
      apply: (snapshot) => {
        firstSnapshots.push(snapshot);
        return { ok: true };
      },
    });
    await waitFor(() => firstSnapshots.length > 0, 'a new proxy served by the restarted control plane', 20_000);
    expect(addressesOf(firstSnapshots[0], 'reviews')).toEqual(['10.7.0.1']);
  });
});
