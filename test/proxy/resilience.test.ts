import { afterEach, describe, expect, it } from '@jest/globals';
import type { Proxy } from '../../src/proxy/index.js';
import type { Route } from '../../src/mesh/snapshot.js';
import { cluster, endpoint, route, snapshot, toCluster, NO_RETRY, DEFAULT_RETRY, DEFAULT_POOL } from './fixtures.js';
import { freePort, send, startSidecar, startUpstream, waitFor, type Upstream } from './helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
const holds: Array<() => void> = [];
afterEach(async () => {
  for (const release of holds.splice(0)) release();
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
});

async function upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const u = await startUpstream(...args);
  ups.push(u);
  return u;
}

function one(r: Partial<Route>, port: number, extraClusters: Parameters<typeof snapshot>[0] = {}) {
  return snapshot({
    hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c'), ...r })] }],
    clusters: [cluster('c'), ...(extraClusters.clusters ?? [])],
    endpoints: { c: [endpoint(port)], ...(extraClusters.endpoints ?? {}) },
  });
}

describe('retries', () => {
  it('retries 5xx up to attempts (1 + attempts requests at the upstream), then returns the last response', async () => {
    const a = await upstream((_q, res) => { res.writeHead(503); res.end('busy'); });
    proxy = await startSidecar(one({ retry: { attempts: 3, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 1 } }, a.port));
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(503);
    expect(r.body).toBe('busy');
    expect(a.hits).toBe(4);
  });

  it('stops retrying once the upstream succeeds and replays the request body', async () => {
    const a = await upstream((_q, res, body, up) => {
      if (up.hits < 3) { res.writeHead(502); res.end(); return; }
      res.end(`ok ${body}`);
    });
    proxy = await startSidecar(one({ retry: { attempts: 5, retryOn: ['gateway-error'], retriableStatusCodes: [], backoffBaseMs: 1 } }, a.port));
    const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'payload' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok payload');
    expect(a.hits).toBe(3);
    expect(a.seen.map((s) => s.body)).toEqual(['payload', 'payload', 'payload']);
  });

  it('does not retry a plain 503 under the default policy (retriable-status-codes without codes), nor with attempts 0', async () => {
    const a = await upstream((_q, res) => { res.writeHead(503); res.end(); });
    proxy = await startSidecar(one({ retry: DEFAULT_RETRY }, a.port));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(503);
    expect(a.hits).toBe(1);
    proxy.applySnapshot(one({ retry: { attempts: 0, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 25 } }, a.port));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(503);
    expect(a.hits).toBe(2);
  });

  it('retries bare retriable status codes and retriable-4xx (409)', async () => {
    const a = await upstream((_q, res, _b, up) => { res.writeHead(up.hits === 1 ? 429 : up.hits === 2 ? 409 : 200); res.end(); });
    proxy = await startSidecar(one({ retry: { attempts: 3, retryOn: ['retriable-4xx', 'retriable-status-codes'], retriableStatusCodes: [429], backoffBaseMs: 1 } }, a.port));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
    expect(a.hits).toBe(3);
  });

  it('retries connect failures on another endpoint under the default policy', async () => {
    const a = await upstream();
    const dead = await freePort();
    proxy = await startSidecar(
      snapshot({
        hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c'), retry: { ...DEFAULT_RETRY, backoffBaseMs: 1 } })] }],
        clusters: [cluster('c', { lb: { simple: 'ROUND_ROBIN' } })],
        endpoints: { c: [endpoint(dead), endpoint(a.port)] },
      }),
    );
    for (let i = 0; i < 4; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
    expect(a.hits).toBe(4);
  });

  it('honours the cluster maxRetries circuit breaker (0 = no retries at all)', async () => {
    const a = await upstream((_q, res) => { res.writeHead(503); res.end(); });
    proxy = await startSidecar(snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c'), retry: { attempts: 3, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 1 } })] }],
      clusters: [cluster('c', { connectionPool: { ...DEFAULT_POOL, maxRetries: 0 } })],
      endpoints: { c: [endpoint(a.port)] },
    }));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(503);
    expect(a.hits).toBe(1);
  });

  it('answers 503 UF when connecting fails and no retry applies', async () => {
    const dead = await freePort();
    proxy = await startSidecar(one({ retry: NO_RETRY }, dead));
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(503);
    expect(r.headers['x-trellis-response-flags']).toBe('UF');
  });

  it('retries a per-try timeout, then succeeds', async () => {
    const a = await upstream((_q, res, _b, up) => {
      if (up.hits === 1) { holds.push(() => res.end('late')); return; }
      res.end('fast');
    });
    proxy = await startSidecar(one({ retry: { attempts: 2, perTryTimeoutMs: 100, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 1 } }, a.port));
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.body).toBe('fast');
    expect(a.hits).toBe(2);
  });
});

describe('timeouts', () => {
  it('answers 504 UT when the route timeout expires; no timeout by default', async () => {
    const a = await upstream((req, res) => {
      if (req.url === '/slow') { holds.push(() => res.end('late')); return; }
      setTimeout(() => res.end('eventually'), 150);
    });
    proxy = await startSidecar(one({ timeoutMs: 100 }, a.port));
    const r = await send(proxy.ports.outbound!, { path: '/slow', headers: { host: 'svc' } });
    expect(r.status).toBe(504);
    expect(r.headers['x-trellis-response-flags']).toBe('UT');
    proxy.applySnapshot(one({}, a.port));
    const slowOk = await send(proxy.ports.outbound!, { path: '/x', headers: { host: 'svc' } });
    expect(slowOk.body).toBe('eventually');
  });
});

describe('fault injection', () => {
  it('aborts with the configured status for 100% and never reaches the upstream', async () => {
    const a = await upstream();
    proxy = await startSidecar(one({ fault: { abort: { httpStatus: 418, percent: 100 } } }, a.port));
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(418);
    expect(r.headers['x-trellis-response-flags']).toBe('FI');
    expect(a.hits).toBe(0);
  });

  it('delays then forwards; percentage 0 injects nothing; the abort share holds statistically', async () => {
    const a = await upstream();
    proxy = await startSidecar(one({ fault: { delay: { fixedDelayMs: 120, percent: 100 } } }, a.port));
    const t0 = Date.now();
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
    proxy.applySnapshot(one({ fault: { abort: { httpStatus: 500, percent: 0 } } }, a.port));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
    proxy.applySnapshot(one({ fault: { abort: { httpStatus: 500, percent: 50 } } }, a.port));
    let aborted = 0;
    const n = 300;
    for (let i = 0; i < n; i++) if ((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status === 500) aborted++;
    // Binomial(300, 0.5): 5 standard deviations is about ±43.
    expect(Math.abs(aborted - n / 2)).toBeLessThan(45);
  });

  it('does not retry or time out a route that has a fault', async () => {
    const a = await upstream((_q, res) => { res.writeHead(503); res.end(); });
    proxy = await startSidecar(one({ fault: { delay: { fixedDelayMs: 1, percent: 100 } }, retry: { attempts: 3, retryOn: ['5xx'], retriableStatusCodes: [], backoffBaseMs: 1 } }, a.port));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(503);
    expect(a.hits).toBe(1);
  });
});

describe('mirroring', () => {
  it('copies requests to the mirror without a -shadow suffix, and a slow or failing mirror does not affect the main request', async () => {
    const main = await upstream();
    const mirror = await upstream((_q, res, body) => { holds.push(() => res.end()); void body; });
    proxy = await startSidecar(
      one({ mirrors: [{ cluster: 'm', percent: 100 }] }, main.port, { clusters: [cluster('m')], endpoints: { m: [endpoint(mirror.port)] } }),
    );
    const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'copy me' });
    expect(r.status).toBe(200);
    await waitFor(() => mirror.seen.length === 1, 5000, 'mirror request');
    expect(mirror.seen[0].headers.host).toBe('svc');
    expect(mirror.seen[0].body).toBe('copy me');
    // A mirror that is down entirely.
    const dead = await freePort();
    proxy.applySnapshot(one({ mirrors: [{ cluster: 'm', percent: 100 }] }, main.port, { clusters: [cluster('m')], endpoints: { m: [endpoint(dead)] } }));
    for (let i = 0; i < 5; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
  });

  it('mirrors only the configured percentage', async () => {
    const main = await upstream();
    const mirror = await upstream();
    proxy = await startSidecar(
      one({ mirrors: [{ cluster: 'm', percent: 0 }] }, main.port, { clusters: [cluster('m')], endpoints: { m: [endpoint(mirror.port)] } }),
    );
    for (let i = 0; i < 10; i++) await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(main.hits).toBe(10);
    expect(mirror.hits).toBe(0);
  });
});
