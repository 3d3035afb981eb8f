import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fetchProxies } from '../../src/discovery/debug-client.js';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryServer } from '../../src/discovery/server.js';
import { PROJECT_ROOT } from '../helpers/shared.js';
import { ClientPool, waitFor } from './helpers.js';
import { identity, syntheticConfig, syntheticRender } from './synthetic-mesh.js';

const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');

/** Runs bin/trellis asynchronously (the server under test lives in this process). */
function trellis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TRELLIS, args, { cwd: PROJECT_ROOT, timeout: 60_000, env: { ...process.env, TRELLIS_OPERATOR: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('trellis proxy-status and proxy-config against a live discovery server', () => {
  let server: DiscoveryServer;
  let url: string;
  const pool = new ClientPool();
  const notBefore = new Date(Date.now() - 60_000).toISOString();
  const notAfter = new Date(Date.now() + 86_400_000).toISOString();

  beforeAll(async () => {
    server = createDiscoveryServer({ render: syntheticRender(syntheticConfig(['bookinfo'], 1)), debounceMs: 10 });
    ({ url } = await server.listen(0));
    pool.start(url, identity('east', 'bookinfo', 'reviews', 'r1', 'reviews'), {
      endpoint: { address: '10.4.0.7', port: 9080 },
      certificate: () => ({ serialNumber: '7F3A', notBefore, notAfter, spiffeId: 'spiffe://cluster.local/ns/bookinfo/sa/reviews', cluster: 'dev' }),
    });
    pool.start(url, identity('east', 'bookinfo', 'ratings', 'r2', 'ratings'), { apply: () => ({ ok: false, error: 'listener 9080: port in use' }) });
    await waitFor(() => server.status().map((s) => s.sync).sort().join() === 'NACKED,SYNCED', 'one SYNCED, one NACKED');
  });

  afterAll(async () => {
    await pool.stopAll();
    await server.close();
  });

  it('prints the sync table, every config section, and a clear error for an unknown proxy', async () => {
    // Three CLI processes in parallel: each spawn compiles the CLI through tsx, which is the slow part.
    const [status, all, unknown] = await Promise.all([
      trellis(['proxy-status', '--operator', url]),
      trellis(['proxy-config', 'reviews/r1', '--operator', url]),
      trellis(['proxy-config', 'nobody', 'routes', '-o', 'json', '--operator', url]),
    ]);
    expect(status.code).toBe(0);
    const lines = status.stdout.trim().split('\n').map((l) => l.split(/\s{3,}/));
    const reviewsHash = server.findProxy('reviews/r1')?.ackedHash;
    expect(lines).toEqual([
      ['NAME', 'CLUSTER', 'VERSION', 'SYNC', 'HASH'],
      ['east/bookinfo/ratings/r2', 'east', '-', 'NACKED', '-'],
      ['east/bookinfo/reviews/r1', 'east', '1.0.0', 'SYNCED', reviewsHash],
    ]);
    expect(status.stderr).toContain('east/bookinfo/ratings/r2: NACK');
    expect(status.stderr).toContain('listener 9080: port in use');

    expect(all.code).toBe(0);
    const sections = Object.fromEntries(
      all.stdout.split(/\n(?=[A-Z]+:\n)/).map((block) => {
        const [title, ...rows] = block.trim().split('\n');
        return [title, rows.map((r) => r.split(/\s{3,}/))];
      }),
    );
    expect(sections['ROUTES:'][0]).toEqual(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE']);
    expect(sections['ROUTES:']).toContainEqual(['outbound', 'reviews.bookinfo.svc.cluster.local:80', 'reviews +2 more...', '/*', '-']);
    expect(sections['CLUSTERS:'].slice(1).map((r: string[]) => r[0])).toEqual(['reviews.bookinfo.svc.cluster.local', 'svc-0.bookinfo.svc.cluster.local']);
    expect(sections['ENDPOINTS:'].slice(1)).toEqual([['10.4.0.7:9080', 'HEALTHY', 'OK', 'outbound|80||reviews.bookinfo.svc.cluster.local', 'istio']]);
    expect(sections['SECRET:'].slice(1)).toEqual([['default', 'Cert Chain', 'ACTIVE', 'true', '7F3A', notAfter, notBefore, 'spiffe://cluster.local/ns/bookinfo/sa/reviews', 'dev']]);

    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('proxy "nobody" is not known to the operator');
  }, 90_000);

  it('says which operator it could not reach', async () => {
    await expect(fetchProxies({ url: 'http://127.0.0.1:1' })).rejects.toThrow(/cannot reach the operator at http:\/\/127\.0\.0\.1:1/);
  });
});
