import { afterEach, describe, expect, it } from '@jest/globals';
import { Agent } from 'node:http';
import type { Proxy } from '../../src/proxy/index.js';
import type { Route } from '../../src/mesh/snapshot.js';
import { cluster, endpoint, route, snapshot, DEFAULT_RETRY } from './fixtures.js';
import { send, startSidecar, startUpstream, seeded, type Upstream } from './helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
afterEach(async () => {
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
});

// Retries are off on purpose: draining, not retrying, must keep every request whole.
describe('hot reconfiguration', () => {
  it('applies 100 snapshot changes under 50 keep-alive connections with zero unintended failures', async () => {
    for (let i = 0; i < 4; i++) {
      ups.push(await startUpstream((_q, res, _b, up) => {
        // A little service time keeps requests in flight across swaps.
        setTimeout(() => { res.writeHead(200, { 'x-upstream': String(up.port) }); res.end('ok'); }, up.hits % 3);
      }));
    }
    const rnd = seeded(7);
    const pickSome = (): number[] => {
      const chosen = ups.filter(() => rnd() < 0.5).map((u) => u.port);
      return chosen.length ? chosen : [ups[Math.floor(rnd() * ups.length)].port];
    };
    const make = (n: number) => {
      const lbs = ['LEAST_REQUEST', 'ROUND_ROBIN', 'RANDOM'] as const;
      const routes: Route[] = [];
      if (n % 3 === 0) routes.push(route({ name: `hdr-${n}`, match: [{ headers: { 'x-canary': { exact: 'yes' } } }], action: { kind: 'route', destinations: [{ cluster: 'v2', weight: 1 }] }, retry: { ...DEFAULT_RETRY, attempts: 0 } }));
      if (n % 4 === 0) routes.push(route({ name: `direct-${n}`, match: [{ uri: { exact: '/never' } }], action: { kind: 'directResponse', status: 500 } }));
      routes.push(route({
        name: `split-${n}`,
        action: { kind: 'route', destinations: [{ cluster: 'v1', weight: Math.floor(rnd() * 100) }, { cluster: 'v2', weight: 1 + Math.floor(rnd() * 100) }] },
        retry: { ...DEFAULT_RETRY, attempts: 0 },
      }));
      return snapshot({
        hosts: [{ domains: ['svc'], routes }],
        clusters: [cluster('v1', { lb: { simple: lbs[n % 3] } }), cluster('v2')],
        endpoints: { v1: pickSome().map((p) => endpoint(p)), v2: pickSome().map((p) => endpoint(p)) },
      });
    };
    proxy = await startSidecar(make(0));
    const port = proxy.ports.outbound!;
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const workers = Array.from({ length: 50 }, async (_, w) => {
      while (!stop) {
        try {
          const r = await send(port, { headers: { host: 'svc', ...(w % 5 === 0 ? { 'x-canary': 'yes' } : {}) }, agent });
          if (r.status === 200) ok++;
          else failures.push(`${r.status} ${r.headers['x-trellis-response-flags'] ?? ''} ${r.body}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    });
    let applied = 0;
    for (let n = 1; n <= 100; n++) {
      const before = ok;
      const r = proxy.applySnapshot(make(n));
      expect(r.ok).toBe(true);
      applied++;
      // Let some requests through on each snapshot.
      while (ok < before + 10) await new Promise((res) => setImmediate(res));
    }
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    expect(applied).toBe(100);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(1000);
  }, 60000);
});
