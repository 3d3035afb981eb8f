import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { KubeStatusWriter } from '../../src/reconciler/kube-status-writer.js';
import { loadKubeConfig } from '../../src/reconciler/kube-client.js';
import { KubeLeaseElector } from '../../src/reconciler/leader.js';
import { PROJECT_ROOT } from '../helpers/shared.js';
import { startFakeKubeApi, type FakeKubeApi } from './helpers/fake-kube-api.js';

const execFileP = promisify(execFile);
let api: FakeKubeApi;
let cacheDir: string;

beforeAll(async () => {
  api = await startFakeKubeApi();
  cacheDir = await mkdtemp(join(tmpdir(), 'trellis-kubectl-cache-'));
});
afterAll(async () => {
  await api.close();
  await rm(cacheDir, { recursive: true, force: true });
});

describe('Kubernetes status writer (client-node against an in-test API server over TLS)', () => {
  test('creates ClusterStatus, merge-patches its status subresource with a resourceVersion precondition, retries 409 conflicts', async () => {
    const writer = new KubeStatusWriter(loadKubeConfig(api.kubeconfigPath), { namespace: 'trellis-system' });
    await writer.write({
      changed: [
        { cluster: 'prod-us', status: { phase: 'Progressing', desiredVersion: '1.16.1', currentVersion: '1.15.4', canary: { step: 1, weight: 50 }, proxies: { total: 10, onDesired: 5, drifted: 2, disconnected: 0 } } },
        { cluster: 'dev', status: { phase: 'Healthy', desiredVersion: '1.16.1', currentVersion: '1.16.1', proxies: { total: 3, onDesired: 3, drifted: 0, disconnected: 0 } } },
      ],
      removed: [],
      message: 'x',
    });
    const stored = api.get('clusterstatuses', 'trellis-system', 'prod-us')!;
    expect(stored).toMatchObject({ apiVersion: 'trellis.dev/v1alpha1', kind: 'ClusterStatus', spec: { cluster: 'prod-us' }, status: { phase: 'Progressing' } });
    expect(
      api.requests.some(
        (r) => r.method === 'PATCH' && r.contentType === 'application/merge-patch+json' && r.path.startsWith('/apis/trellis.dev/v1alpha1/namespaces/trellis-system/clusterstatuses/prod-us/status'),
      ),
    ).toBe(true);

    const rvBefore = Number(stored.metadata.resourceVersion);
    api.conflictNextPuts(2);
    await writer.upsert('prod-us', { phase: 'Healthy', desiredVersion: '1.16.1', currentVersion: '1.16.1', proxies: { total: 10, onDesired: 10, drifted: 0, disconnected: 0 } });
    const after = api.get('clusterstatuses', 'trellis-system', 'prod-us')!;
    // The merge patch removed what the new status no longer has (canary), not just added.
    expect(after.status).toEqual({ phase: 'Healthy', desiredVersion: '1.16.1', currentVersion: '1.16.1', proxies: { total: 10, onDesired: 10, drifted: 0, disconnected: 0 } });
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(rvBefore);

    api.conflictNextPuts(50);
    await expect(writer.upsert('prod-us', { phase: 'Degraded' })).rejects.toThrow(/409/);
    api.conflictNextPuts(0);
  });

  test('the real kubectl shows the printer columns', async () => {
    const { stdout } = await execFileP('kubectl', ['--kubeconfig', api.kubeconfigPath, '--cache-dir', cacheDir, 'get', 'clusterstatuses'], { cwd: PROJECT_ROOT });
    const lines = stdout.trim().split('\n');
    expect(lines[0]!.split(/\s+/)).toEqual(['NAME', 'CLUSTER', 'DESIRED', 'CURRENT', 'PHASE', 'DRIFT', 'AGE']);
    const rows = Object.fromEntries(lines.slice(1).map((l) => [l.split(/\s+/)[0], l.split(/\s+/)]));
    expect(rows['prod-us']!.slice(1, 6)).toEqual(['prod-us', '1.16.1', '1.16.1', 'Healthy', '0']);
    expect(rows['dev']!.slice(1, 6)).toEqual(['dev', '1.16.1', '1.16.1', 'Healthy', '0']);
    expect(rows['prod-us']![6]).toMatch(/^\d+s$/);
    // kubectl asked for the Table form, as the real API server serves it.
    expect(api.requests.some((r) => r.path.startsWith('/apis/trellis.dev/v1alpha1/namespaces/trellis-system/clusterstatuses') && /as=Table/.test(r.accept ?? ''))).toBe(true);
  });

  test('a cluster removed from the fleet: its ClusterStatus is deleted (absent is fine)', async () => {
    const writer = new KubeStatusWriter(loadKubeConfig(api.kubeconfigPath), { namespace: 'trellis-system' });
    await writer.write({ changed: [], removed: ['dev', 'never-existed'], message: 'x' });
    expect(api.get('clusterstatuses', 'trellis-system', 'dev')).toBeUndefined();
    expect(api.get('clusterstatuses', 'trellis-system', 'prod-us')).toBeDefined();
  });

  test('a coordination.k8s.io/v1 Lease elects one leader; a stale lease is taken over; release hands it on', async () => {
    const kc = loadKubeConfig(api.kubeconfigPath);
    const timing = { leaseDurationMs: 1_000, renewIntervalMs: 100 };
    const a = new KubeLeaseElector(kc, 'trellis-system', 'trellis-operator', 'replica-a', timing);
    const b = new KubeLeaseElector(kc, 'trellis-system', 'trellis-operator', 'replica-b', timing);
    await a.start();
    await b.start();
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    const lease = api.get('leases', 'trellis-system', 'trellis-operator')!;
    expect((lease.spec as { holderIdentity: string }).holderIdentity).toBe('replica-a');

    const changed = new Promise<boolean>((resolve) => b.onChange(resolve));
    await a.stop(); // releases: holderIdentity cleared
    expect(await changed).toBe(true);
    expect(b.isLeader()).toBe(true);
    const taken = api.get('leases', 'trellis-system', 'trellis-operator')!.spec as { holderIdentity: string; leaseTransitions: number };
    expect(taken.holderIdentity).toBe('replica-b');
    expect(taken.leaseTransitions).toBe(1);
    await b.stop();

    // A holder that vanished without releasing: its lease expires and is taken over.
    const coord = kc.makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api);
    const current = await coord.readNamespacedLease({ name: 'trellis-operator', namespace: 'trellis-system' });
    const longAgo = new Date(Date.now() - 60_000);
    await coord.replaceNamespacedLease({
      name: 'trellis-operator',
      namespace: 'trellis-system',
      body: { ...current, spec: { ...current.spec, holderIdentity: 'ghost', renewTime: longAgo, leaseDurationSeconds: 1 } },
    });
    const c = new KubeLeaseElector(kc, 'trellis-system', 'trellis-operator', 'replica-c', timing);
    await c.start();
    expect(c.isLeader()).toBe(true);
    expect((api.get('leases', 'trellis-system', 'trellis-operator')!.spec as { holderIdentity: string }).holderIdentity).toBe('replica-c');
    await c.stop();
  });
});
