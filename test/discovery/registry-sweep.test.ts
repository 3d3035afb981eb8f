import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { ClientHttp2Session } from 'node:http2';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryServer } from '../../src/discovery/server.js';
import { PROTOCOL_VERSION } from '../../src/discovery/protocol.js';
import { openRawDiscoveryStream } from './helpers.js';
import { identity, syntheticConfig, syntheticRender } from './synthetic-mesh.js';

// Fake clocks for our code only: node's HTTP/2 internals keep real timers, and I/O is real.
let server: DiscoveryServer | null = null;
const sessions: ClientHttp2Session[] = [];

afterEach(async () => {
  for (const s of sessions.splice(0)) s.destroy();
  await server?.close();
  server = null;
  jest.useRealTimers();
});

/** Spins the event loop (real I/O, fake clock) until `cond` holds; `performance` keeps real time for the bound. */
async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function openProxy(url: string, name: string, endpoint?: { address: string; port: number; labels: Record<string, string> }) {
  const { session, received, send } = openRawDiscoveryStream(url);
  sessions.push(session);
  send({ v: PROTOCOL_VERSION, type: 'hello', identity: identity('c1', 'a', name, '0', name), proxyVersion: 'test', meshVersion: '1.0.0', runningHash: null, ...(endpoint ? { endpoint } : {}) });
  return { session, received };
}

describe('one timer sweep for every proxy deadline', () => {
  it('holds no per-proxy timers: grace and forget deadlines of 30 gone proxies are met by the sweep', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'performance'] });
    const s = createDiscoveryServer({ render: syntheticRender(syntheticConfig(['a'], 0)), endpointGraceMs: 30_000, forgetAfterMs: 60_000, idleTimeoutMs: 0 });
    server = s;
    const { url } = await s.listen(0);
    const n = 30;
    const proxies = Array.from({ length: n }, (_, i) => openProxy(url, `w${i}`, { address: `10.0.0.${i + 1}`, port: 9080, labels: {} }));
    await until(() => s.endpoints().length === n, 'every endpoint registered');
    jest.advanceTimersByTime(200); // the debounced push of the registrations
    for (const p of proxies) p.session.destroy();
    await until(() => s.status().every((r) => !r.connected), 'every proxy DISCONNECTED');

    // Per-proxy timers would be 2 per gone proxy (grace, forget); the sweep is one for all.
    expect(jest.getTimerCount()).toBeLessThanOrEqual(2);

    jest.advanceTimersByTime(29_000);
    expect(s.endpoints()).toHaveLength(n); // within the grace period
    jest.advanceTimersByTime(2_000);
    expect(s.endpoints()).toHaveLength(0);
    expect(s.status()).toHaveLength(n); // still listed, DISCONNECTED
    expect(s.status().every((r) => r.sync === 'DISCONNECTED')).toBe(true);
    jest.advanceTimersByTime(30_000);
    expect(s.status()).toHaveLength(0); // forgotten
    expect(jest.getTimerCount()).toBeLessThanOrEqual(2);
  });

  it('releases a push deferred behind an unanswered one once that one is stale, and reports STALE', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'performance'] });
    const config = syntheticConfig(['a'], 1);
    const s = createDiscoveryServer({ render: syntheticRender(config), staleAfterMs: 10_000, idleTimeoutMs: 0 });
    server = s;
    const { url } = await s.listen(0);
    const silent = openProxy(url, 'silent'); // never answers
    const snapshots = () => silent.received.filter((m) => m.type === 'snapshot').length;
    await until(() => snapshots() === 1, 'first snapshot');
    config.timeouts['a/svc-0'] = 5;
    s.configChanged('change while the first push is unanswered');
    jest.advanceTimersByTime(50);
    await s.flush();
    expect(snapshots()).toBe(1); // deferred: the proxy has not answered the first one
    expect(s.status()[0].sync).toBe('PENDING');

    jest.advanceTimersByTime(10_500);
    expect(s.status()[0].sync).toBe('STALE');
    await until(() => snapshots() === 2, 'the deferred push released by the sweep');
  });
});
