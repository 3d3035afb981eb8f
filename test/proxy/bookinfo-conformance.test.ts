/**
 * Conformance: Istio's own bookinfo samples, rendered by src/render and served by a real proxy to
 * real upstreams (one server per service version, all on the same port across 127.0.0.x so the
 * rendered service port is the real one).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createServer, Agent, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocuments } from '../../src/mesh/load.js';
import { buildProxySnapshot } from '../../src/render/snapshot/index.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import type { Proxy } from '../../src/proxy/index.js';
import { SHARED_ISTIO, describeWithIstioFixtures } from '../helpers/shared.js';
import { clusterOf, endpointOf, proxyOf } from '../render/snapshot/fixtures.js';
import { freePort, send, startSidecar } from './helpers.js';

const SAMPLES = join(SHARED_ISTIO, 'bookinfo-networking');
const INSTANCES = [
  { service: 'reviews', version: 'v1', address: '127.0.0.1' },
  { service: 'reviews', version: 'v2', address: '127.0.0.2' },
  { service: 'reviews', version: 'v3', address: '127.0.0.3' },
  { service: 'ratings', version: 'v1', address: '127.0.0.4' },
  { service: 'details', version: 'v1', address: '127.0.0.5' },
];

let port = 0;
const servers: Server[] = [];
let proxy: Proxy | undefined;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

async function listenAll(p: number): Promise<boolean> {
  const started: Server[] = [];
  for (const i of INSTANCES) {
    const s = createServer((_req, res) => res.end(`${i.service}-${i.version}`));
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(p, i.address, () => resolve(true));
    });
    if (!ok) {
      await Promise.all(started.map((x) => new Promise((r) => x.close(r))));
      return false;
    }
    started.push(s);
  }
  servers.push(...started);
  return true;
}

function render(...files: string[]): ProxySnapshot {
  const objects = files.flatMap((f) => parseDocuments(readFileSync(join(SAMPLES, f), 'utf8'), f).objects);
  const endpoints = INSTANCES.map((i) => endpointOf({ service: i.service, address: i.address, port, labels: { app: i.service, version: i.version }, tlsMode: 'disabled' }));
  return buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy: proxyOf({ namespace: 'default', workload: 'productpage-v1', labels: { app: 'productpage', version: 'v1' } }) });
}

async function get(service: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; flags?: string }> {
  const r = await send(proxy!.ports.outbound!, { path: `/${service}/0`, headers: { host: `${service}:${port}`, ...headers }, agent });
  return { status: r.status, body: r.body, flags: r.headers['x-trellis-response-flags'] as string | undefined };
}

function apply(...files: string[]): void {
  const r = proxy!.applySnapshot(render(...files));
  if (!r.ok) throw new Error(r.error);
}

describeWithIstioFixtures('bookinfo-networking conformance (rendered by src/render, served by src/proxy)', () => {
  beforeAll(async () => {
    for (let i = 0; i < 20 && !port; i++) {
      const p = await freePort();
      if (await listenAll(p)) port = p;
    }
    if (!port) throw new Error('no port free on 127.0.0.1-5');
    proxy = await startSidecar(undefined);
  });
  afterAll(async () => {
    agent.destroy();
    await proxy?.close({ drainMs: 0 });
    await Promise.all(servers.map((s) => { s.closeAllConnections(); return new Promise((r) => s.close(r)); }));
  });

  it('virtual-service-reviews-jason-v2-v3: end-user jason reaches v2, everyone else v3', async () => {
    apply('virtual-service-reviews-jason-v2-v3.yaml', 'destination-rule-all.yaml');
    for (let i = 0; i < 5; i++) {
      expect((await get('reviews', { 'end-user': 'jason' })).body).toBe('reviews-v2');
      expect((await get('reviews', { 'end-user': 'kim' })).body).toBe('reviews-v3');
      expect((await get('reviews')).body).toBe('reviews-v3');
    }
  });

  it.each([
    ['virtual-service-reviews-80-20.yaml', 'reviews-v1', 0.8],
    ['virtual-service-reviews-90-10.yaml', 'reviews-v1', 0.9],
    ['virtual-service-reviews-50-v3.yaml', 'reviews-v1', 0.5],
  ])('%s: the split holds within a statistical bound', async (file, target, share) => {
    apply(file, 'destination-rule-all.yaml');
    const n = 300;
    let hits = 0;
    const all = await Promise.all(Array.from({ length: n }, () => get('reviews')));
    for (const r of all) if (r.body === target) hits++;
    // Binomial(n, p): allow 5 standard deviations.
    const sd = Math.sqrt(n * share * (1 - share));
    expect(Math.abs(hits - n * share)).toBeLessThan(5 * sd);
    expect(all.every((r) => r.status === 200)).toBe(true);
  });

  it('virtual-service-ratings-test-abort: jason gets the injected 500, others reach ratings v1', async () => {
    apply('virtual-service-ratings-test-abort.yaml', 'destination-rule-all.yaml');
    const aborted = await get('ratings', { 'end-user': 'jason' });
    expect(aborted.status).toBe(500);
    expect(aborted.flags).toBe('FI');
    expect((await get('ratings')).body).toBe('ratings-v1');
  });

  it('virtual-service-ratings-test-delay: jason waits the 7 s delay, others do not', async () => {
    apply('virtual-service-ratings-test-delay.yaml', 'destination-rule-all.yaml');
    expect((await get('ratings')).body).toBe('ratings-v1');
    const delayed = send(proxy!.ports.outbound!, { path: '/ratings/0', headers: { host: `ratings:${port}`, 'end-user': 'jason' }, agent: false }).catch(() => 'reset');
    const winner = await Promise.race([delayed.then(() => 'answered'), new Promise((r) => setTimeout(() => r('still delayed'), 1000))]);
    expect(winner).toBe('still delayed');
    expect(proxy!.status().inflight).toBeGreaterThanOrEqual(1);
  });

  it('fault-injection-details-v1: every request to details is aborted with 555', async () => {
    apply('fault-injection-details-v1.yaml');
    const r = await get('details');
    expect(r.status).toBe(555);
    expect(r.flags).toBe('FI');
  });
});
