import { afterEach, describe, expect, it } from '@jest/globals';
import type { ClientHttp2Session } from 'node:http2';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryEvent, DiscoveryServer, DiscoveryServerOptions } from '../../src/discovery/server.js';
import { NACK_BASE_MISMATCH, PROTOCOL_VERSION } from '../../src/discovery/protocol.js';
import type { SnapshotMessage } from '../../src/discovery/protocol.js';
import { ClientPool, openRawDiscoveryStream, waitFor } from './helpers.js';
import { identity, syntheticConfig, syntheticRender } from './synthetic-mesh.js';
import type { SyntheticConfig } from './synthetic-mesh.js';

let server: DiscoveryServer | null = null;
const pool = new ClientPool();
const sessions: ClientHttp2Session[] = [];

afterEach(async () => {
  await pool.stopAll();
  for (const s of sessions.splice(0)) s.destroy();
  await server?.close();
  server = null;
});

async function startServer(config: SyntheticConfig, extra: Partial<DiscoveryServerOptions> = {}): Promise<{ url: string; server: DiscoveryServer; pushed: DiscoveryEvent[] }> {
  const s = createDiscoveryServer({ render: syntheticRender(config), debounceMs: 20, ...extra });
  server = s;
  const pushed: DiscoveryEvent[] = [];
  s.events.on('event', (e) => {
    if (e.type === 'pushed') pushed.push(e);
  });
  const { url } = await s.listen(0);
  return { url, server: s, pushed };
}

const allSynced = (s: DiscoveryServer, n: number) => () => {
  const rows = s.status();
  return rows.length === n && rows.every((r) => r.sync === 'SYNCED');
};

describe('discovery server with 200 real HTTP/2 clients', () => {
  it('connects, pushes, gets ACKs, and sends a change only to the proxies it affects', async () => {
    const namespaces = ['alpha', 'beta', 'gamma', 'delta'];
    const config = syntheticConfig(namespaces, 5);
    const { url, server: s, pushed } = await startServer(config, { debounceMs: 100 });
    const clients = Array.from({ length: 200 }, (_, i) => {
      const ns = namespaces[i % namespaces.length];
      return { ns, client: pool.start(url, identity('c1', ns, `w${i}`, '0', `svc-${i % 5}`), { endpoint: { address: `10.0.${i >> 8}.${i & 255}`, port: 8080 } }) };
    });
    await waitFor(allSynced(s, 200), 'all 200 proxies SYNCED', 60_000);
    await s.flush();
    await waitFor(allSynced(s, 200), 'all 200 proxies SYNCED after registry pushes', 60_000);
    for (const { client } of clients) expect(client.runningHash).not.toBeNull();
    // Each proxy's snapshot lists the endpoints registered in its namespace: 50 per namespace.
    const sample = clients[0].client.running!;
    expect(sample.endpoints.reduce((n, a) => n + a.endpoints.length, 0)).toBe(50);

    const before = clients.map(({ client }) => client.counters.snapshots);
    pushed.length = 0;
    config.timeouts['beta/svc-3'] = 1500;
    s.configChanged('VirtualService beta/svc-3');
    await s.flush();
    await waitFor(allSynced(s, 200), 'all proxies SYNCED after the change', 60_000);

    const got = clients.map(({ client }, i) => client.counters.snapshots - before[i]);
    clients.forEach(({ ns, client }, i) => {
      expect({ ns, extra: got[i] }).toEqual({ ns, extra: ns === 'beta' ? 1 : 0 });
      if (ns === 'beta') {
        const route = client.running!.routeConfigs[0].virtualHosts.find((v) => v.name.startsWith('svc-3.'))!.routes[0];
        expect(route.timeoutMs).toBe(1500);
      }
    });
    expect(pushed).toHaveLength(50);
    for (const e of pushed) {
      if (e.type !== 'pushed') continue;
      expect(e.base).not.toBeNull(); // a delta ...
      expect(e.resources).toBe(1); // ... carrying only the changed virtual host
    }
    const metricsText = await s.metrics.registry.metrics();
    expect(metricsText).toMatch(/trellis_discovery_connected_proxies 200/);
  }, 120_000);
});

describe('debounce, reconnect, NACK, STALE, DISCONNECTED', () => {
  it('merges a burst of changes into one push per proxy', async () => {
    const config = syntheticConfig(['a'], 2);
    const { url, server: s, pushed } = await startServer(config, { debounceMs: 50 });
    const clients = [0, 1, 2].map((i) => pool.start(url, identity('c1', 'a', `w${i}`, '0')));
    await waitFor(allSynced(s, 3), 'three proxies SYNCED');
    await s.flush();
    pushed.length = 0;
    const before = clients.map((c) => c.counters.snapshots);
    for (let i = 0; i < 10; i++) {
      config.timeouts['a/svc-0'] = 1000 + i;
      s.configChanged(`edit ${i}`);
    }
    await s.flush();
    await waitFor(allSynced(s, 3), 'SYNCED after the burst');
    expect(clients.map((c, i) => c.counters.snapshots - before[i])).toEqual([1, 1, 1]);
    expect(pushed).toHaveLength(3);
    expect(clients[0].running!.routeConfigs[0].virtualHosts[0].routes[0].timeoutMs).toBe(1009);
  });

  it('pushes a lone change after a quiet period at once (leading edge), without waiting for the quiet period', async () => {
    const config = syntheticConfig(['a'], 2);
    // A one-minute quiet period: only the leading edge can get this change out within the wait below.
    const { url, server: s } = await startServer(config, { debounceMs: 60_000, debounceMaxMs: 120_000 });
    const client = pool.start(url, identity('c1', 'a', 'w', '0'));
    await waitFor(allSynced(s, 1), 'SYNCED');
    config.timeouts['a/svc-1'] = 1234;
    s.configChanged('one commit');
    await waitFor(() => client.running?.routeConfigs[0].virtualHosts[1].routes[0].timeoutMs === 1234, 'the change applied', 10_000);
  });

  it('gives each proxy of a cold-start burst one snapshot, built on every endpoint the burst registered', async () => {
    const n = 30;
    const config = syntheticConfig(['a'], 2);
    const { url, server: s, pushed } = await startServer(config, { debounceMs: 1500, debounceLeadingMs: 1500 });
    const clients = Array.from({ length: n }, (_, i) => pool.start(url, identity('c1', 'a', `w${i}`, '0', 'svc-0'), { endpoint: { address: `10.0.0.${i + 1}`, port: 8080 } }));
    await waitFor(allSynced(s, n), `${n} proxies SYNCED`, 20_000);
    await s.flush();
    for (const c of clients) expect(c.running!.endpoints.find((e) => e.cluster.includes('svc-0'))!.endpoints).toHaveLength(n);
    // One push each: before batching, every proxy got one at connect and one more per registry change.
    expect(clients.map((c) => c.counters.snapshots)).toEqual(clients.map(() => 1));
    expect(pushed).toHaveLength(n);
  });

  it('does not resend to a reconnecting proxy that runs the desired snapshot', async () => {
    const config = syntheticConfig(['a'], 2);
    const { url, server: s, pushed } = await startServer(config);
    const first = pool.start(url, identity('c1', 'a', 'w', '0'));
    await waitFor(allSynced(s, 1), 'first connection SYNCED');
    const running = first.running!;
    await first.stop();
    await waitFor(() => s.status()[0].sync === 'DISCONNECTED', 'DISCONNECTED after stop');
    pushed.length = 0;
    const second = pool.start(url, identity('c1', 'a', 'w', '0'), { initialSnapshot: running });
    await waitFor(() => s.status()[0].connected, 'reconnected');
    await s.flush();
    expect(s.status()[0].sync).toBe('SYNCED');
    expect(second.counters.snapshots).toBe(0);
    expect(pushed).toHaveLength(0);

    // With a different running snapshot it gets exactly one push, and a delta is impossible (unknown base): full.
    await second.stop();
    await waitFor(() => !s.status()[0].connected, 'second stopped');
    config.timeouts['a/svc-1'] = 700;
    const third = pool.start(url, identity('c1', 'a', 'w', '0'), { initialSnapshot: running });
    await waitFor(allSynced(s, 1), 'third SYNCED');
    expect(third.counters.snapshots).toBe(1);
    expect(third.counters.fullSnapshots).toBe(0); // the server remembered what it last sent: a delta
    expect(third.running!.routeConfigs[0].virtualHosts[1].routes[0].timeoutMs).toBe(700);
  });

  it('records a NACK with its reason and reports NACKED; a later good snapshot is SYNCED again', async () => {
    const config = syntheticConfig(['a'], 1);
    const { url, server: s } = await startServer(config);
    let reject = false;
    pool.start(url, identity('c1', 'a', 'w', '0'), {
      apply: () => (reject ? { ok: false, error: 'route outbound: regex "(" does not compile' } : { ok: true }),
    });
    await waitFor(allSynced(s, 1), 'SYNCED');
    const good = s.status()[0].ackedHash;
    reject = true;
    config.timeouts['a/svc-0'] = 5;
    s.configChanged('bad');
    const row = (await waitFor(() => s.status().find((r) => r.sync === 'NACKED'), 'NACKED'))!;
    expect(row.lastNack?.reason).toBe('route outbound: regex "(" does not compile');
    expect(row.lastNack?.hash).toBe(row.desiredHash);
    expect(row.ackedHash).toBe(good);
    reject = false;
    config.timeouts['a/svc-0'] = 6;
    s.configChanged('fixed');
    await waitFor(allSynced(s, 1), 'SYNCED after the fix');
  });

  it('reports STALE when a proxy withholds its ACK past staleAfterMs', async () => {
    const config = syntheticConfig(['a'], 1);
    const { url, server: s } = await startServer(config, { staleAfterMs: 150 });
    let hold = false;
    const releases: Array<() => void> = [];
    pool.start(url, identity('c1', 'a', 'w', '0'), {
      apply: () => (hold ? new Promise((resolve) => releases.push(() => resolve({ ok: true }))) : { ok: true }),
    });
    await waitFor(allSynced(s, 1), 'SYNCED');
    hold = true;
    config.timeouts['a/svc-0'] = 9;
    s.configChanged('held');
    await waitFor(() => releases.length === 1, 'apply called');
    expect(['PENDING', 'STALE']).toContain(s.status()[0].sync);
    await waitFor(() => s.status()[0].sync === 'STALE', 'STALE');
    releases[0]();
    await waitFor(allSynced(s, 1), 'SYNCED after the late ACK');
  });

  it('holds further pushes to a proxy until it answers the one in flight, then sends only the newest', async () => {
    const config = syntheticConfig(['a'], 1);
    const { url, server: s } = await startServer(config);
    let hold = false;
    const releases: Array<() => void> = [];
    const client = pool.start(url, identity('c1', 'a', 'w', '0'), {
      apply: () => (hold ? new Promise((resolve) => releases.push(() => resolve({ ok: true }))) : { ok: true }),
    });
    await waitFor(allSynced(s, 1), 'SYNCED');
    const before = client.counters.snapshots;
    hold = true;
    config.timeouts['a/svc-0'] = 1;
    s.configChanged('first');
    await waitFor(() => releases.length === 1, 'first push being applied');
    for (const timeout of [2, 3]) {
      config.timeouts['a/svc-0'] = timeout;
      s.configChanged(`change to ${timeout}`);
      await s.flush();
    }
    expect(client.counters.snapshots).toBe(before + 1);
    hold = false;
    releases[0]();
    await waitFor(() => allSynced(s, 1)() && client.running?.routeConfigs[0].virtualHosts[0].routes[0].timeoutMs === 3, 'SYNCED on the newest');
    expect(client.counters.snapshots).toBe(before + 2);
  });

  it('marks a gone proxy DISCONNECTED and removes its endpoint from other proxies after the grace period', async () => {
    const config = syntheticConfig(['a'], 0);
    const { url, server: s } = await startServer(config, { endpointGraceMs: 150 });
    const watcher = pool.start(url, identity('c1', 'a', 'watcher', '0'));
    const leaving = pool.start(url, identity('c1', 'a', 'reviews', '0', 'reviews'), { endpoint: { address: '10.1.2.3', port: 9080, labels: { app: 'reviews', version: 'v2' } } });
    const endpointsSeen = () => watcher.running?.endpoints.flatMap((a) => a.endpoints.map((e) => `${a.cluster} ${e.address}:${e.port} ${e.labels.version}`)) ?? [];
    await waitFor(() => endpointsSeen().length === 1, 'watcher sees the reviews endpoint');
    expect(endpointsSeen()).toEqual(['outbound|80||reviews.a.svc.cluster.local 10.1.2.3:9080 v2']);
    expect(s.endpoints()).toEqual([expect.objectContaining({ service: 'reviews', namespace: 'a', proxyId: 'c1/a/reviews/0', tlsMode: 'istio', serviceAccount: 'reviews' })]);
    await leaving.stop();
    await waitFor(() => s.findProxy('reviews/0')?.sync === 'DISCONNECTED', 'DISCONNECTED');
    await waitFor(() => watcher.running!.clusters.length === 0, 'endpoint (and its service) removed after grace');
    expect(s.endpoints()).toEqual([]);
  });

  it('adds static (ServiceEntry) endpoints to the registry', async () => {
    const config = syntheticConfig(['a'], 0);
    const { url, server: s } = await startServer(config);
    const watcher = pool.start(url, identity('c1', 'a', 'watcher', '0'));
    await waitFor(allSynced(s, 1), 'SYNCED');
    s.setStaticEndpoints([{ service: 'external', namespace: 'a', address: '192.0.2.10', port: 443, labels: {}, tlsMode: 'disabled' }]);
    await waitFor(() => watcher.running!.endpoints.some((a) => a.endpoints.some((e) => e.address === '192.0.2.10')), 'static endpoint pushed');
  });
});

describe('delta protocol on a raw HTTP/2 stream', () => {
  function openRaw(url: string) {
    const raw = openRawDiscoveryStream(url);
    sessions.push(raw.session);
    return raw;
  }

  it('after a (re)start, a proxy that already runs a snapshot keeps it for the restart hold; a new proxy is served at once', async () => {
    const config = syntheticConfig(['a'], 2);
    const { url } = await startServer(config, { restartHoldMs: 2000 });
    const survivor = openRaw(url);
    survivor.send({ v: PROTOCOL_VERSION, type: 'hello', identity: identity('c1', 'a', 'survivor', '0'), proxyVersion: 'test', meshVersion: '1.0.0', runningHash: 'aaaaaaaaaaaaaaaa' });
    const fresh = openRaw(url);
    fresh.send({ v: PROTOCOL_VERSION, type: 'hello', identity: identity('c1', 'a', 'fresh', '0'), proxyVersion: 'test', meshVersion: '1.0.0', runningHash: null });
    await waitFor(() => fresh.received.find((m) => m.type === 'snapshot'), 'the new proxy served at once');
    // The survivor connected first, yet it is held: its endpoint registry peers may not be back yet.
    expect(survivor.received.filter((m) => m.type === 'snapshot')).toEqual([]);
    const released = (await waitFor(() => survivor.received.find((m) => m.type === 'snapshot'), 'the survivor synced when the hold ends')) as SnapshotMessage;
    expect(released.base).toBeNull(); // its running hash was unknown here: a full snapshot
  });

  it('sends a full snapshot, then deltas, and a full resend after base-mismatch', async () => {
    const config = syntheticConfig(['a'], 3);
    const { url, server: s } = await startServer(config);
    const raw = openRaw(url);
    const id = identity('c1', 'a', 'raw', '0');
    raw.send({ v: PROTOCOL_VERSION, type: 'hello', identity: id, proxyVersion: 'test', meshVersion: '1.0.0', runningHash: null });
    const full = (await waitFor(() => raw.received[0], 'full snapshot')) as SnapshotMessage;
    expect(full.type).toBe('snapshot');
    expect(full.base).toBeNull();
    expect(Object.keys(full.resources).sort()).toEqual([
      'cluster/outbound|80||svc-0.a.svc.cluster.local',
      'cluster/outbound|80||svc-1.a.svc.cluster.local',
      'cluster/outbound|80||svc-2.a.svc.cluster.local',
      'endpoints/outbound|80||svc-0.a.svc.cluster.local',
      'endpoints/outbound|80||svc-1.a.svc.cluster.local',
      'endpoints/outbound|80||svc-2.a.svc.cluster.local',
      'inbound', 'mesh', 'meta', 'routeConfig/outbound', 'telemetry',
    ]);
    raw.send({ v: PROTOCOL_VERSION, type: 'ack', hash: full.version });
    await waitFor(() => s.status()[0].sync === 'SYNCED', 'SYNCED');

    config.services.a = ['svc-0', 'svc-1']; // svc-2 goes away
    s.configChanged('remove svc-2');
    const delta = (await waitFor(() => raw.received[1], 'delta')) as SnapshotMessage;
    expect(delta.base).toBe(full.version);
    expect(Object.keys(delta.resources).sort()).toEqual(['meta', 'routeConfig/outbound']);
    expect(delta.removed.sort()).toEqual(['cluster/outbound|80||svc-2.a.svc.cluster.local', 'endpoints/outbound|80||svc-2.a.svc.cluster.local']);

    raw.send({ v: PROTOCOL_VERSION, type: 'nack', hash: delta.version, reason: NACK_BASE_MISMATCH });
    const resend = (await waitFor(() => raw.received[2], 'full resend')) as SnapshotMessage;
    expect(resend.base).toBeNull();
    expect(resend.version).toBe(delta.version);
    expect(Object.keys(resend.resources)).toHaveLength(9);
    expect(s.status()[0].lastNack).toBeNull(); // a resync is not a rejection
    raw.send({ v: PROTOCOL_VERSION, type: 'ack', hash: resend.version });
    await waitFor(() => s.status()[0].sync === 'SYNCED', 'SYNCED after resend');
  });

  it('cuts snapshots per virtual host for a proxy whose hello offers resources-v2', async () => {
    const config = syntheticConfig(['a'], 3);
    const { url, server: s } = await startServer(config);
    const raw = openRaw(url);
    raw.send({ v: PROTOCOL_VERSION, type: 'hello', identity: identity('c1', 'a', 'raw', '0'), proxyVersion: 'test', meshVersion: '1.0.0', runningHash: null, features: ['resources-v2'] });
    const full = (await waitFor(() => raw.received[0], 'full snapshot')) as SnapshotMessage;
    expect(Object.keys(full.resources).filter((n) => n.startsWith('virtualHost/') || n.startsWith('order/')).sort()).toEqual([
      'order/clusters', 'order/endpoints', 'order/listeners', 'order/routeConfigs',
      'virtualHost/outbound/svc-0.a.svc.cluster.local:80',
      'virtualHost/outbound/svc-1.a.svc.cluster.local:80',
      'virtualHost/outbound/svc-2.a.svc.cluster.local:80',
    ]);
    raw.send({ v: PROTOCOL_VERSION, type: 'ack', hash: full.version });
    await waitFor(() => s.status()[0].sync === 'SYNCED', 'SYNCED');

    config.services.a = ['svc-0', 'svc-1'];
    s.configChanged('remove svc-2');
    const delta = (await waitFor(() => raw.received[1], 'delta')) as SnapshotMessage;
    // meta (the proxy identity) is not resent: the orders changed, not it.
    expect(Object.keys(delta.resources).sort()).toEqual(['order/clusters', 'order/endpoints', 'routeConfig/outbound']);
    expect(delta.removed.sort()).toEqual([
      'cluster/outbound|80||svc-2.a.svc.cluster.local',
      'endpoints/outbound|80||svc-2.a.svc.cluster.local',
      'virtualHost/outbound/svc-2.a.svc.cluster.local:80',
    ]);
  });

  it('closes a stream that stays silent past idleTimeoutMs and reports the proxy DISCONNECTED', async () => {
    const { url, server: s } = await startServer(syntheticConfig(['a'], 1), { idleTimeoutMs: 150 });
    const raw = openRaw(url);
    raw.send({ v: PROTOCOL_VERSION, type: 'hello', identity: identity('c1', 'a', 'silent', '0'), proxyVersion: 'test', meshVersion: '1.0.0', runningHash: null });
    await waitFor(() => s.status()[0]?.connected, 'connected');
    await waitFor(() => s.status()[0].sync === 'DISCONNECTED', 'DISCONNECTED after the idle timeout');
    await waitFor(() => raw.stream.closed || raw.stream.destroyed, 'stream closed by the operator');
  });

  it('refuses a stream whose first message is not hello, and an unknown protocol version', async () => {
    const { url } = await startServer(syntheticConfig(['a'], 1));
    const raw = openRaw(url);
    raw.send({ v: PROTOCOL_VERSION, type: 'ack', hash: 'x' });
    const err = await waitFor(() => raw.received[0], 'error message');
    expect(err).toEqual({ v: PROTOCOL_VERSION, type: 'error', code: 'bad-request', message: 'the first message must be hello' });

    const raw2 = openRaw(url);
    raw2.stream.write('{"v":99,"type":"hello"}\n');
    const err2 = await waitFor(() => raw2.received[0], 'error message');
    expect(err2).toMatchObject({ type: 'error', code: 'unsupported-version' });
  });
});

describe('heartbeats and the debug API', () => {
  it('aggregates heartbeat statistics per mesh version for a cluster (a connection\'s first heartbeat is a baseline)', async () => {
    const { url, server: s } = await startServer(syntheticConfig(['a'], 1));
    const stat = (meshVersion: string, requests: number, errors5xx: number, counts: number[]) => ({
      meshVersion, requests, errors5xx, latencyBucketsMs: [10, 100], latencyCounts: counts, sumMs: requests * 7,
    });
    let aStats = [stat('1.0.0', 100, 1, [90, 10, 0])];
    let bStats = [stat('1.0.0', 50, 0, [50, 0, 0]), stat('1.1.0', 20, 5, [10, 5, 5])];
    let otherStats = [stat('1.0.0', 1000, 0, [1000, 0, 0])];
    const a = pool.start(url, identity('c1', 'a', 'a', '0'), { stats: () => aStats });
    const b = pool.start(url, identity('c1', 'a', 'b', '0'), { stats: () => bStats });
    const other = pool.start(url, identity('c2', 'a', 'c', '0'), { stats: () => otherStats });
    await waitFor(() => s.status().filter((r) => r.connected).length === 3, 'three connected');
    const beats = () => s.status().filter((r) => r.lastHeartbeat !== null).length;
    a.sendHeartbeat();
    b.sendHeartbeat();
    other.sendHeartbeat();
    await waitFor(() => beats() === 3, 'three heartbeats');
    // The history the proxies brought with them is a baseline, not traffic of this window.
    expect(s.versionStats('c1').reduce((n, v) => n + v.requests, 0)).toBe(0);
    aStats = [stat('1.0.0', 130, 2, [115, 15, 0])];
    bStats = [stat('1.0.0', 60, 0, [60, 0, 0]), stat('1.1.0', 40, 10, [20, 10, 10])];
    otherStats = [stat('1.0.0', 1200, 0, [1200, 0, 0])];
    a.sendHeartbeat();
    b.sendHeartbeat();
    other.sendHeartbeat();
    await waitFor(() => s.versionStats('c1').find((v) => v.meshVersion === '1.0.0')?.requests === 40 && s.versionStats('c1').some((v) => v.meshVersion === '1.1.0'), 'second heartbeats counted as deltas');
    const byVersion = Object.fromEntries(s.versionStats('c1').map((v) => [v.meshVersion, v]));
    expect(byVersion['1.0.0']).toMatchObject({ requests: 40, errors5xx: 1, latencyBucketsMs: [10, 100], latencyCounts: [35, 5, 0], sumMs: 40 * 7, proxies: 2 });
    expect(byVersion['1.1.0']).toMatchObject({ requests: 20, errors5xx: 5, latencyCounts: [10, 5, 5] });
    await waitFor(() => s.versionStats('c2')[0]?.requests === 200, 'other cluster counted apart');
  });

  it('serves /debug/proxies and /debug/config/<id> over HTTP/1.1 with private keys redacted', async () => {
    const config = syntheticConfig(['a'], 1);
    const render = syntheticRender(config);
    const { url, server: s } = await startServer(config, {
      render: (p, eps) => {
        const snap = render(p, eps);
        return { ...snap, clusters: snap.clusters.map((c) => ({ ...c, tls: { mode: 'MUTUAL' as const, privateKey: '-----BEGIN PRIVATE KEY-----x', subjectAltNames: [] } })) };
      },
    });
    pool.start(url, identity('c1', 'a', 'w', '0'));
    await waitFor(allSynced(s, 1), 'SYNCED');
    const proxies = (await (await fetch(`${url}/debug/proxies`)).json()) as { proxies: Array<{ id: string; sync: string }> };
    expect(proxies.proxies.map((p) => [p.id, p.sync])).toEqual([['c1/a/w/0', 'SYNCED']]);
    const res = await fetch(`${url}/debug/config/${encodeURIComponent('c1/a/w/0')}`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain('BEGIN PRIVATE KEY');
    expect(JSON.parse(text).snapshot.clusters[0].tls.privateKey).toBe('[redacted]');
    expect((await fetch(`${url}/debug/config/w/0`)).status).toBe(200); // unique suffix
    expect((await fetch(`${url}/debug/config/nope`)).status).toBe(404);
  });

  it('recovers when the renderer announces a version that is not the content hash', async () => {
    const config = syntheticConfig(['a'], 1);
    const render = syntheticRender(config);
    const { url, server: s } = await startServer(config, { render: (p, eps) => ({ ...render(p, eps), version: '0000000000000000' }) });
    const client = pool.start(url, identity('c1', 'a', 'w', '0'));
    await waitFor(allSynced(s, 1), 'SYNCED after the server verified the version itself');
    expect(client.runningHash).not.toBe('0000000000000000');
    expect(client.runningHash).toBe(s.status()[0].desiredHash);
  });
});

describe('operator restart', () => {
  it('keeps the proxy on its last snapshot while the operator is away, and reconnects without a resend', async () => {
    const config = syntheticConfig(['a'], 2);
    const first = await startServer(config);
    const port = Number(new URL(first.url).port);
    const events: string[] = [];
    const client = pool.start(first.url, identity('c1', 'a', 'w', '0'));
    client.events.on('event', (e) => events.push(e.type));
    await waitFor(allSynced(first.server, 1), 'SYNCED');
    const running = client.runningHash;
    await first.server.close();
    server = null;
    await waitFor(() => !client.connected, 'client noticed the outage');
    expect(client.runningHash).toBe(running);
    expect(client.running).not.toBeNull();

    // A new operator on the same port: the proxy reconnects by itself (backoff) and, running the
    // desired snapshot already, receives nothing.
    const second = createDiscoveryServer({ render: syntheticRender(config), debounceMs: 20 });
    server = second;
    await second.listen(port);
    await waitFor(() => client.connected && allSynced(second, 1)(), 'SYNCED with the new operator');
    await second.flush();
    expect(client.counters.snapshots).toBe(1);
    expect(client.counters.connects).toBe(2);
    expect(events).toEqual(['connected', 'applied', 'disconnected', 'connected']);
  });
});

