import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import {
  assembleSnapshot,
  canonicalJson,
  diffResources,
  encodeDelta,
  sha256Hex16,
  snapshotContentHash,
  splitSnapshot,
} from '../../src/discovery/resources.js';
import type { ContentHashMemo } from '../../src/discovery/resources.js';
import { backoffDelayMs, reassemble } from '../../src/discovery/client.js';
import { classifyReply, computeDrift } from '../../src/discovery/reply.js';
import type { ReplyRecord } from '../../src/discovery/reply.js';
import { PushQueue } from '../../src/discovery/push-queue.js';
import { createDebouncer } from '../../src/discovery/debounce.js';
import { LineDecoder, NACK_BASE_MISMATCH, PROTOCOL_VERSION, ProtocolError, decodeProxyMessage } from '../../src/discovery/protocol.js';
import type { SnapshotMessage } from '../../src/discovery/protocol.js';
import { VersionStatsAggregator, diffVersionStats, latencyQuantileMs } from '../../src/discovery/version-stats.js';
import { EndpointRegistry } from '../../src/discovery/endpoint-registry.js';
import { redactSecrets } from '../../src/discovery/debug-api.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import { identity, syntheticConfig, syntheticRender } from './synthetic-mesh.js';

function snapshotFor(timeout?: number): ProxySnapshot {
  const config = syntheticConfig(['a'], 3);
  if (timeout !== undefined) config.timeouts['a/svc-1'] = timeout;
  return syntheticRender(config)(identity('c', 'a', 'w', '0'), [
    { service: 'svc-0', namespace: 'a', address: '10.0.0.1', port: 80, labels: { app: 'svc-0' }, tlsMode: 'istio' },
  ]);
}

function toMessage(version: string, base: string | null, delta: ReturnType<typeof diffResources>): SnapshotMessage {
  // Through the wire format, as the client really sees it.
  return JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, type: 'snapshot', version, base, resources: delta.changed, removed: delta.removed }));
}

describe('canonical JSON and content hashes', () => {
  it('sorts keys at every depth and drops undefined members like JSON.stringify', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined, { z: 1, y: 'x' }], c: undefined } })).toBe('{"a":{"d":[3,null,{"y":"x","z":1}]},"b":1}');
    expect(canonicalJson({ s: 'quote " and \u2028', n: NaN, t: true, nil: null })).toBe(JSON.stringify({ n: null, nil: null, s: 'quote " and \u2028', t: true }));
  });

  it('hashes a snapshot as sha256 of the canonical JSON without version, first 16 hex chars (the renderer contract)', () => {
    const snap = snapshotFor();
    const { version: _v, ...rest } = snap;
    void _v;
    const expected = createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
    expect(snapshotContentHash(snap)).toBe(expected);
    expect(snapshotContentHash({ ...snap, version: 'ignored' })).toBe(expected);
    expect(sha256Hex16('x')).toHaveLength(16);
    // Extra top-level fields (added to the contract later) are part of the hash and survive a split.
    const extended = { ...snap, extra: { b: 1, a: 2 } } as ProxySnapshot;
    const extendedHash = snapshotContentHash(extended);
    expect(extendedHash).toBe(sha256Hex16(canonicalJson({ ...rest, extra: { a: 2, b: 1 } })));
    const split = splitSnapshot({ ...extended, version: extendedHash });
    expect(snapshotContentHash(assembleSnapshot(extendedHash, split.resources))).toBe(extendedHash);
  });

  it('resumes from the hash state before the first top-level member that changed, and gives the full content hash', () => {
    const a = snapshotFor();
    const b = snapshotFor(2500);
    const memo: ContentHashMemo = {};
    expect(snapshotContentHash(a, memo)).toBe(a.version);
    expect(memo.last?.keys[0]).toBe('clusters');
    const statesOfA = memo.last!.states;
    // Same items in new lists (as a client reassembles them): resumed after them, and still the full content hash.
    const sameLists = { ...b, clusters: [...a.clusters], endpoints: [...a.endpoints] };
    expect(snapshotContentHash(sameLists, memo)).toBe(snapshotContentHash(sameLists));
    expect(memo.last!.states[1]).toBe(statesOfA[1]);
    expect(memo.last!.states[2]).toBe(statesOfA[2]);
    const fewer = { ...a, clusters: a.clusters.slice(1) };
    expect(snapshotContentHash(fewer, memo)).toBe(snapshotContentHash(fewer));
    expect(memo.last!.values[0]).toBe(fewer.clusters);
    // A member sorting before every other one: nothing to resume from, still right.
    const extra = { ...a, aaa: 1 } as ProxySnapshot;
    expect(snapshotContentHash(extra, memo)).toBe(snapshotContentHash(extra));
    // A member that disappears, and one that serialises to nothing.
    const { telemetry: _t, ...noTelemetry } = a;
    void _t;
    expect(snapshotContentHash(noTelemetry as ProxySnapshot, memo)).toBe(snapshotContentHash(noTelemetry as ProxySnapshot));
    const undefinedMember = { ...a, zzz: undefined } as ProxySnapshot;
    expect(snapshotContentHash(undefinedMember, memo)).toBe(a.version);
    expect(snapshotContentHash(a, memo)).toBe(a.version);
    // The same snapshot again resumes at the end.
    expect(snapshotContentHash(a, memo)).toBe(a.version);
  });

  it('splits a snapshot into named resources and reassembles it to the same hash', () => {
    const snap = snapshotFor();
    const split = splitSnapshot(snap);
    expect([...split.resources.keys()].sort()).toEqual([
      'cluster/outbound|80||svc-0.a.svc.cluster.local',
      'cluster/outbound|80||svc-1.a.svc.cluster.local',
      'cluster/outbound|80||svc-2.a.svc.cluster.local',
      'endpoints/outbound|80||svc-0.a.svc.cluster.local',
      'endpoints/outbound|80||svc-1.a.svc.cluster.local',
      'endpoints/outbound|80||svc-2.a.svc.cluster.local',
      'inbound', 'mesh', 'meta', 'routeConfig/outbound', 'telemetry',
    ]);
    const back = assembleSnapshot(snap.version, split.resources);
    expect(back).toEqual(snap);
    expect(snapshotContentHash(back)).toBe(snap.version);
  });

  it('keeps duplicate names apart instead of losing one', () => {
    const snap = snapshotFor();
    const dup = { ...snap, clusters: [snap.clusters[0], { ...snap.clusters[0], port: 81 }] };
    const withVersion = { ...dup, version: snapshotContentHash(dup) };
    const split = splitSnapshot(withVersion);
    expect(split.resources.has('cluster/outbound|80||svc-0.a.svc.cluster.local#1')).toBe(true);
    expect(snapshotContentHash(assembleSnapshot(withVersion.version, split.resources))).toBe(withVersion.version);
  });

  it('diffs only the resources whose hash changed', () => {
    const a = splitSnapshot(snapshotFor());
    const b = splitSnapshot(snapshotFor(2500));
    const delta = diffResources(a.hashes, b);
    expect(Object.keys(delta.changed)).toEqual(['routeConfig/outbound']);
    expect(delta.removed).toEqual([]);
    expect(Object.keys(diffResources(null, b).changed)).toHaveLength(11);
  });
});

describe('resource layout 2: virtual hosts and list orders as resources of their own', () => {
  // One renderer per configuration, as the operator has one per commit: proxies of a namespace share resource objects.
  const endpoints = [{ service: 'svc-0', namespace: 'a', address: '10.0.0.1', port: 80, labels: { app: 'svc-0' }, tlsMode: 'istio' as const }];
  const renderers = new Map<number | undefined, ReturnType<typeof syntheticRender>>();
  const at = (i: number, timeout?: number): ProxySnapshot => {
    let render = renderers.get(timeout);
    if (!render) {
      const config = syntheticConfig(['a'], 3);
      if (timeout !== undefined) config.timeouts['a/svc-1'] = timeout;
      renderers.set(timeout, (render = syntheticRender(config)));
    }
    return render(identity('c', 'a', `w${i}`, '0'), endpoints);
  };

  it('splits route configs into virtual hosts and reassembles the same snapshot', () => {
    const snap = at(0);
    const split = splitSnapshot(snap, 2);
    const names = [...split.resources.keys()];
    expect(names.filter((n) => n.startsWith('virtualHost/')).sort()).toEqual([
      'virtualHost/outbound/svc-0.a.svc.cluster.local:80',
      'virtualHost/outbound/svc-1.a.svc.cluster.local:80',
      'virtualHost/outbound/svc-2.a.svc.cluster.local:80',
    ]);
    expect(names.filter((n) => n.startsWith('order/')).sort()).toEqual(['order/clusters', 'order/endpoints', 'order/listeners', 'order/routeConfigs']);
    expect(split.resources.get('meta')).not.toHaveProperty('$order');
    expect(split.resources.get('routeConfig/outbound')).toEqual({ name: 'outbound', $virtualHosts: expect.any(Array) });
    const back = assembleSnapshot(snap.version, split.resources);
    expect(back).toEqual(snap);
    expect(snapshotContentHash(back)).toBe(snap.version);
  });

  it('sends only the changed virtual host, and shares groups and encoded bytes between proxies of one shape', () => {
    const [a0, a1, b0, b1] = [at(0), at(1), at(0, 2500), at(1, 2500)];
    const [sa0, sa1, sb0, sb1] = [a0, a1, b0, b1].map((s) => splitSnapshot(s, 2));
    // Everything but meta (which names the proxy) is the same group object for both proxies.
    sa0.groups.forEach((g, i) => expect(g === sa1.groups[i]).toBe(g.kind !== 'meta'));
    const d0 = encodeDelta(sa0.groups, sb0.groups);
    const d1 = encodeDelta(sa1.groups, sb1.groups);
    expect(Object.keys(JSON.parse(d0.resources))).toEqual(['virtualHost/outbound/svc-1.a.svc.cluster.local:80']);
    expect({ changed: d0.changed, removed: d0.removed, bytes: d0.bytes }).toEqual({ changed: 1, removed: [], bytes: Buffer.byteLength(d0.resources) });
    // The same bytes for both streams: one Buffer, not a copy per proxy.
    expect(d0.chunks).toHaveLength(d1.chunks.length);
    d0.chunks.forEach((chunk, i) => expect(chunk).toBe(d1.chunks[i]));
    const nothing = encodeDelta(sb0.groups, sb0.groups);
    expect({ resources: nothing.resources, changed: nothing.changed, removed: nothing.removed }).toEqual({ resources: '{}', changed: 0, removed: [] });
    // A client applies the full snapshot, then the delta, through the wire format.
    const full = reassemble(null, JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, type: 'snapshot', version: a0.version, base: null, resources: JSON.parse(encodeDelta(null, sa0.groups).resources), removed: [] })));
    if (!full.ok) throw new Error(full.reason);
    const next = reassemble(full.state, { v: PROTOCOL_VERSION, type: 'snapshot', version: b0.version, base: a0.version, resources: JSON.parse(d0.resources), removed: [] });
    if (!next.ok) throw new Error(next.reason);
    expect(next.snapshot).toEqual(b0);
  });

  it('removes resources that disappear, including a whole group of another layout', () => {
    const one = at(0);
    const fewer = { ...one, clusters: one.clusters.slice(1), endpoints: one.endpoints.slice(1) };
    const fewerSplit = splitSnapshot({ ...fewer, version: snapshotContentHash(fewer) }, 2);
    const delta = encodeDelta(splitSnapshot(one, 2).groups, fewerSplit.groups);
    expect(delta.removed.sort()).toEqual(['cluster/outbound|80||svc-0.a.svc.cluster.local', 'endpoints/outbound|80||svc-0.a.svc.cluster.local']);
    const fromLayout1 = encodeDelta(splitSnapshot(one, 1).groups, splitSnapshot(one, 2).groups);
    expect(fromLayout1.removed).toEqual([]);
    expect(Object.keys(JSON.parse(fromLayout1.resources)).sort()).toEqual(
      ['meta', 'order/clusters', 'order/endpoints', 'order/listeners', 'order/routeConfigs', 'routeConfig/outbound', ...[0, 1, 2].map((i) => `virtualHost/outbound/svc-${i}.a.svc.cluster.local:80`)].sort(),
    );
  });
});

describe('client reassembly', () => {
  const v1 = snapshotFor();
  const v2 = snapshotFor(2500);
  const full = reassemble(null, toMessage(v1.version, null, diffResources(null, splitSnapshot(v1))));

  it('builds a full snapshot, then applies a delta on it', () => {
    if (!full.ok) throw new Error(full.reason);
    expect(full.snapshot).toEqual(v1);
    const delta = toMessage(v2.version, v1.version, diffResources(splitSnapshot(v1).hashes, splitSnapshot(v2)));
    expect(Object.keys(delta.resources)).toEqual(['routeConfig/outbound']);
    const next = reassemble(full.state, delta);
    if (!next.ok) throw new Error(next.reason);
    expect(next.snapshot).toEqual(v2);
  });

  it('asks for a full resend when the base is not what it holds', () => {
    const delta = toMessage(v2.version, 'ffffffffffffffff', diffResources(splitSnapshot(v1).hashes, splitSnapshot(v2)));
    expect(reassemble(full.ok ? full.state : null, delta)).toEqual({ ok: false, reason: NACK_BASE_MISMATCH });
    expect(reassemble(null, delta)).toEqual({ ok: false, reason: NACK_BASE_MISMATCH });
  });

  it('applies a delta in place: a refused one leaves the held resources as they were, an applied one uses them up', () => {
    const start = reassemble(null, toMessage(v1.version, null, diffResources(null, splitSnapshot(v1))));
    if (!start.ok) throw new Error(start.reason);
    const delta = toMessage(v2.version, v1.version, diffResources(splitSnapshot(v1).hashes, splitSnapshot(v2)));
    // Right base, wrong content: refused, and nothing of it stays behind.
    const tampered = { ...delta, resources: { ...delta.resources, telemetry: { ...v1.telemetry, metrics: !v1.telemetry.metrics } }, removed: ['listener/none'] };
    expect(reassemble(start.state, tampered).ok).toBe(false);
    expect(start.state.version).toBe(v1.version);
    expect(start.state.resources.get('telemetry')).toEqual(v1.telemetry);
    const next = reassemble(start.state, delta);
    if (!next.ok) throw new Error(next.reason);
    expect(next.snapshot).toEqual(v2);
    // The state it was applied to is used up: a second delta against it is a base mismatch, never a wrong snapshot.
    expect(reassemble(start.state, delta)).toEqual({ ok: false, reason: NACK_BASE_MISMATCH });
  });

  it('refuses content that does not hash to the announced version, and missing resources', () => {
    const msg = toMessage(v1.version, null, diffResources(null, splitSnapshot(v1)));
    (msg.resources['telemetry'] as { metrics: boolean }).metrics = false;
    const tampered = reassemble(null, msg);
    expect(tampered.ok).toBe(false);
    expect(!tampered.ok && tampered.reason).toMatch(/^hash-mismatch: content hash [0-9a-f]{16} is not /);
    delete msg.resources['mesh'];
    const missing = reassemble(null, msg);
    expect(!missing.ok && missing.reason).toBe('hash-mismatch: resource mesh is missing');
  });

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelayMs(0, 200, 5000, () => 0)).toBe(100);
    expect(backoffDelayMs(0, 200, 5000, () => 1)).toBe(200);
    expect(backoffDelayMs(3, 200, 5000, () => 1)).toBe(1600);
    expect(backoffDelayMs(10, 200, 5000, () => 1)).toBe(5000);
    expect(backoffDelayMs(10, 200, 5000, () => 0)).toBe(2500);
  });
});

describe('ACK/NACK classification and drift', () => {
  const empty: ReplyRecord = { sentHash: null, sentAt: null, ackedHash: null, ackedAt: null, lastNack: null };
  const hello = (runningHash: string | null) => ({ v: 1, type: 'hello' as const, identity: identity('c', 'a', 'w', '0'), proxyVersion: 'x', meshVersion: '1', runningHash });

  it('classifies hello, ack, nack, stale and resync', () => {
    const init = classifyReply({ ...empty, sentHash: 'old', sentAt: 1 }, hello('h1'), 10);
    expect(init).toEqual({ kind: 'init', resync: false, record: { ...empty, ackedHash: 'h1', ackedAt: 10 } });
    const sent: ReplyRecord = { ...init.record, sentHash: 'h2', sentAt: 20 };
    expect(classifyReply(sent, { v: 1, type: 'ack', hash: 'h2' }, 30)).toEqual({ kind: 'ack', resync: false, record: { ...sent, ackedHash: 'h2', ackedAt: 30 } });
    expect(classifyReply(sent, { v: 1, type: 'ack', hash: 'h1' }, 30)).toEqual({ kind: 'stale', resync: false, record: sent });
    expect(classifyReply(sent, { v: 1, type: 'nack', hash: 'h2', reason: 'bad regex' }, 30)).toEqual({
      kind: 'nack', resync: false, record: { ...sent, lastNack: { hash: 'h2', reason: 'bad regex', at: 30 } },
    });
    expect(classifyReply(sent, { v: 1, type: 'nack', hash: 'h2', reason: NACK_BASE_MISMATCH }, 30)).toEqual({ kind: 'nack', resync: true, record: sent });
    expect(classifyReply(sent, { v: 1, type: 'nack', hash: 'h0', reason: 'late' }, 30).kind).toBe('stale');
  });

  it('computes SYNCED, PENDING, STALE, NACKED and DISCONNECTED', () => {
    const base = { ...empty, connected: true, desiredHash: 'h2' };
    expect(computeDrift({ ...base, connected: false, ackedHash: 'h2' }, 0, 100)).toBe('DISCONNECTED');
    expect(computeDrift({ ...base, ackedHash: 'h2' }, 0, 100)).toBe('SYNCED');
    expect(computeDrift({ ...base, ackedHash: 'h1', sentHash: 'h2', sentAt: 1000 }, 1050, 100)).toBe('PENDING');
    expect(computeDrift({ ...base, ackedHash: 'h1', sentHash: 'h2', sentAt: 1000 }, 1101, 100)).toBe('STALE');
    expect(computeDrift({ ...base, ackedHash: 'h1', sentHash: 'h2', sentAt: 1000, lastNack: { hash: 'h2', reason: 'x', at: 1 } }, 5000, 100)).toBe('NACKED');
    // A NACK of an older version does not make a newer pending push NACKED.
    expect(computeDrift({ ...base, desiredHash: 'h3', sentHash: 'h3', sentAt: 1000, lastNack: { hash: 'h2', reason: 'x', at: 1 } }, 1001, 100)).toBe('PENDING');
  });
});

describe('push queue and debounce', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('keeps one pending push per proxy, merges requests, and re-queues one that arrives mid-send', () => {
    const q = new PushQueue<string, string[]>((a, b) => [...a, ...b]);
    q.enqueue('p1', ['a']);
    q.enqueue('p2', ['b']);
    q.enqueue('p1', ['c']);
    expect(q.pendingCount).toBe(2);
    const first = q.dequeue();
    expect(first).toEqual({ key: 'p1', request: ['a', 'c'] });
    q.enqueue('p1', ['d']); // arrives while p1 is being pushed
    q.enqueue('p1', ['e']);
    expect(q.dequeue()).toEqual({ key: 'p2', request: ['b'] });
    expect(q.dequeue()).toBeUndefined(); // p1 is not pushed twice at once
    q.markDone('p1');
    expect(q.dequeue()).toEqual({ key: 'p1', request: ['d', 'e'] });
    q.markDone('p1');
    q.markDone('p2');
    expect(q.isIdle()).toBe(true);
  });

  it('merges a burst into one push after the quiet period, and bounds a long burst by maxMs', async () => {
    jest.useFakeTimers();
    const pushes: string[][] = [];
    const d = createDebouncer<string[]>({ afterMs: 100, maxMs: 1000, merge: (a, b) => [...a, ...b], push: (e) => { pushes.push(e); } });
    d.trigger(['a']);
    jest.advanceTimersByTime(50);
    d.trigger(['b']);
    jest.advanceTimersByTime(99);
    expect(pushes).toEqual([]);
    jest.advanceTimersByTime(2);
    await Promise.resolve();
    expect(pushes).toEqual([['a', 'b']]);
    // An event every 50 ms never leaves a 100 ms quiet period: maxMs forces pushes anyway.
    for (let i = 0; i < 50; i++) {
      d.trigger([`e${i}`]);
      jest.advanceTimersByTime(50);
      await Promise.resolve();
    }
    expect(pushes.length).toBeGreaterThanOrEqual(3);
    expect(pushes.length).toBeLessThanOrEqual(4);
    d.close();
  });

  it('with a leading edge, pushes the first event after a quiet period at once and debounces the burst that follows', async () => {
    jest.useFakeTimers();
    const settle = async () => {
      for (let i = 0; i < 5; i++) await Promise.resolve();
    };
    const pushes: Array<{ at: number; events: string[] }> = [];
    const start = Date.now();
    const d = createDebouncer<string[]>({ afterMs: 100, maxMs: 1000, leadingMs: 10, merge: (a, b) => [...a, ...b], push: (e) => { pushes.push({ at: Date.now() - start, events: e }); } });
    d.trigger(['lone']);
    expect(d.pending).toBe(true);
    jest.advanceTimersByTime(9);
    expect(pushes).toEqual([]);
    jest.advanceTimersByTime(1);
    await settle();
    expect(pushes).toEqual([{ at: 10, events: ['lone'] }]);
    expect(d.pending).toBe(false);
    // Events within the quiet period of the last one are a burst: merged, pushed once quiet.
    jest.advanceTimersByTime(10); // t = 20
    d.trigger(['b1']);
    jest.advanceTimersByTime(40); // t = 60
    d.trigger(['b2']);
    jest.advanceTimersByTime(99);
    await settle();
    expect(pushes).toHaveLength(1);
    jest.advanceTimersByTime(1); // t = 160: 100 ms after b2
    await settle();
    expect(pushes[1]).toEqual({ at: 160, events: ['b1', 'b2'] });
    // Quiet again for longer than afterMs: the next event takes the leading edge.
    jest.advanceTimersByTime(500);
    d.trigger(['later']);
    jest.advanceTimersByTime(10);
    await settle();
    expect(pushes[2]).toEqual({ at: 670, events: ['later'] });
    // A continuous burst (every 50 ms) is still bounded by maxMs.
    jest.advanceTimersByTime(500);
    for (let i = 0; i < 50; i++) {
      d.trigger([`e${i}`]);
      jest.advanceTimersByTime(50);
      await settle();
    }
    const burst = pushes.slice(3);
    expect(burst[0].events).toEqual(['e0']);
    expect(burst.length).toBeGreaterThanOrEqual(3);
    expect(burst.length).toBeLessThanOrEqual(5);
    await d.flush();
    // Nothing lost, nothing twice.
    expect(pushes.slice(3).flatMap((p) => p.events)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    d.close();
  });

  it('holds a burst that arrives during a push until the push finishes', async () => {
    let release!: () => void;
    const pushes: string[][] = [];
    const d = createDebouncer<string[]>({
      afterMs: 1,
      maxMs: 10,
      merge: (a, b) => [...a, ...b],
      push: (e) => {
        pushes.push(e);
        return new Promise<void>((resolve) => (release = resolve));
      },
    });
    d.trigger(['a']);
    await new Promise((r) => setTimeout(r, 20));
    expect(d.pushing).toBe(true);
    d.trigger(['b']);
    d.trigger(['c']);
    await new Promise((r) => setTimeout(r, 20));
    expect(pushes).toEqual([['a']]);
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(pushes).toEqual([['a'], ['b', 'c']]);
    release();
    d.close();
  });
});

describe('protocol decoding', () => {
  it('splits lines across chunk boundaries', () => {
    const dec = new LineDecoder();
    expect(dec.push('{"a":')).toEqual([]);
    expect(dec.push(Buffer.from('1}\n{"b":2}\n{"c"'))).toEqual(['{"a":1}', '{"b":2}']);
    expect(dec.push(':3}\n')).toEqual(['{"c":3}']);
  });

  it('names the field at fault', () => {
    expect(() => decodeProxyMessage('{"v":1,"type":"nack","hash":"x"}')).toThrow(new ProtocolError('nack.reason must be a string'));
    expect(() => decodeProxyMessage('{"v":1,"type":"hello","identity":{"id":"a","cluster":"c","namespace":"n","workload":"w","serviceAccount":"s","mode":"sidecar","labels":{}},"proxyVersion":"1","meshVersion":"1","runningHash":null,"endpoint":{"address":"x"}}'))
      .toThrow('hello.endpoint must have address (string) and port (number)');
    expect(() => decodeProxyMessage('[1]')).toThrow('message is not a JSON object');
    expect(() => decodeProxyMessage('{"v":2,"type":"ack"}')).toThrow('unsupported protocol version 2 (want 1)');
  });
});

describe('heartbeat statistics', () => {
  const stat = (meshVersion: string, requests: number, errors5xx: number, counts: number[]) => ({
    meshVersion, requests, errors5xx, latencyBucketsMs: [5, 50], latencyCounts: counts, sumMs: requests,
  });

  it('adds counter increases per cluster and version, treats a decrease as a proxy restart, and a first heartbeat as a baseline', () => {
    const agg = new VersionStatsAggregator();
    agg.record('p1', 'c', [stat('1', 10, 1, [8, 2, 0])]); // first of the connection: history, a baseline only
    agg.record('p1', 'c', [stat('1', 15, 1, [12, 3, 0])]);
    agg.record('p2', 'c', [stat('2', 0, 0, [0, 0, 0])]);
    agg.record('p2', 'c', [stat('2', 4, 4, [0, 0, 4])]);
    agg.record('p1', 'c', [stat('1', 3, 0, [3, 0, 0])]); // restarted
    agg.record('p1', 'c', [stat('1', 4, 0, [4, 0, 0]), stat('3', 2, 0, [2, 0, 0])]); // a version new to a known proxy counts whole
    const stats = agg.stats('c', new Map([['1', 1], ['2', 1], ['3', 1]]));
    expect(stats).toEqual([
      { meshVersion: '1', proxies: 1, requests: 9, errors5xx: 0, sumMs: 9, latencyBucketsMs: [5, 50], latencyCounts: [8, 1, 0] },
      { meshVersion: '2', proxies: 1, requests: 4, errors5xx: 4, sumMs: 4, latencyBucketsMs: [5, 50], latencyCounts: [0, 0, 4] },
      { meshVersion: '3', proxies: 1, requests: 2, errors5xx: 0, sumMs: 2, latencyBucketsMs: [5, 50], latencyCounts: [2, 0, 0] },
    ]);
    agg.forget('p1');
    agg.record('p1', 'c', [stat('1', 500, 50, [500, 0, 0])]); // reconnected: its history does not count again
    expect(agg.stats('c', new Map()).find((s) => s.meshVersion === '1')).toMatchObject({ requests: 9, errors5xx: 0 });
    const later = (() => {
      agg.record('p2', 'c', [stat('2', 10, 4, [6, 0, 4])]);
      return agg.stats('c', new Map());
    })();
    expect(diffVersionStats(later, stats).find((s) => s.meshVersion === '2')).toMatchObject({ requests: 6, errors5xx: 0, latencyCounts: [6, 0, 0] });
    expect(latencyQuantileMs({ latencyBucketsMs: [5, 50], latencyCounts: [98, 1, 1] }, 0.99)).toBe(50);
    expect(latencyQuantileMs({ latencyBucketsMs: [5, 50], latencyCounts: [90, 0, 10] }, 0.99)).toBe(Infinity);
    expect(latencyQuantileMs({ latencyBucketsMs: [5], latencyCounts: [0, 0] }, 0.5)).toBeNaN();
  });
});

describe('endpoint registry and redaction', () => {
  it('reports changes only when content changes and keeps list() sorted and stable', () => {
    const reg = new EndpointRegistry();
    const ep = { service: 'b', namespace: 'n', address: '10.0.0.2', port: 80, labels: {}, tlsMode: 'istio' as const, proxyId: 'p2' };
    expect(reg.register('p2', ep)).toBe(true);
    expect(reg.register('p2', { ...ep })).toBe(false);
    expect(reg.register('p1', { ...ep, service: 'a', proxyId: 'p1' })).toBe(true);
    expect(reg.setStatic([{ service: 'a', namespace: 'm', address: '1.1.1.1', port: 443, labels: {}, tlsMode: 'disabled' }])).toBe(true);
    const list = reg.list();
    expect(list.map((e) => `${e.namespace}/${e.service}`)).toEqual(['m/a', 'n/a', 'n/b']);
    expect(reg.list()).toBe(list);
    expect(reg.unregister('p1')).toBe(true);
    expect(reg.unregister('p1')).toBe(false);
  });

  it('redacts private keys at any depth', () => {
    expect(redactSecrets({ a: [{ tls: { privateKey: 'PEM', cert: 'C' } }] })).toEqual({ a: [{ tls: { privateKey: '[redacted]', cert: 'C' } }] });
  });
});
