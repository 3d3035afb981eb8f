/**
 * The proxy's validation gate on snapshots the discovery client reassembles from deltas: it checks
 * each resource once and the cross-references on every snapshot, and must decide exactly as the
 * whole-snapshot check does — in particular, a delta that breaks a reference held by a resource it
 * did not change is still refused.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { reassemble } from '../../src/discovery/client.js';
import type { HeldState } from '../../src/discovery/client.js';
import { startDiscoveryClient } from '../../src/discovery/client.js';
import type { DiscoveryClient } from '../../src/discovery/client.js';
import { PROTOCOL_VERSION, decodeOperatorMessage } from '../../src/discovery/protocol.js';
import type { SnapshotMessage } from '../../src/discovery/protocol.js';
import { encodeDelta, isDeepFrozen, snapshotContentHash, splitSnapshot } from '../../src/discovery/resources.js';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryServer } from '../../src/discovery/server.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import { snapshotValidationCounters, validateProxySnapshot, validateWhole } from '../../src/proxy/snapshot-validate.js';
import { cluster, endpoint, route, snapshot, toCluster } from '../proxy/fixtures.js';
import { waitFor } from './helpers.js';

type Mutable = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A sidecar snapshot with two route configs, regexes, mirrors, CORS, rewrites, and a gateway-style listener. */
function richSnapshot(): ProxySnapshot {
  const s = snapshot({
    clusters: [cluster('a'), cluster('b'), cluster('c')],
    endpoints: { a: [endpoint(8080)], b: [endpoint(8081)], c: [endpoint(8082)] },
    hosts: [
      {
        domains: ['a.default.svc.cluster.local'],
        routes: [
          route({ name: 'regex', match: [{ uri: { regex: '/v[0-9]+/.*' }, headers: { 'x-user': { regex: 'j.*' } } }], action: toCluster('a') }),
          route({ name: 'mirror', action: toCluster('a'), mirrors: [{ cluster: 'c', percent: 50 }] }),
        ],
      },
      { domains: ['b.default.svc.cluster.local'], routes: [route({ name: 'to-b', action: toCluster('b') })] },
      { domains: ['*'], routes: [route({ name: 'out', action: toCluster('PassthroughCluster', 'PassthroughCluster') })] },
    ],
  });
  const rich = s as Mutable;
  rich.routeConfigs.push({ name: 'gateway-80', virtualHosts: [{ name: 'gw', domains: ['*'], routes: [route({ name: 'gw-b', action: toCluster('b') })] }] });
  rich.listeners = [{ name: 'http-80', port: 80, protocol: 'HTTP', hosts: ['*'], routeConfig: 'gateway-80' }];
  return withVersion(rich as ProxySnapshot);
}

function withVersion(s: ProxySnapshot): ProxySnapshot {
  return { ...s, version: snapshotContentHash(s) };
}

/** The wire message the operator sends to move a proxy from `base` to `next` (layout 2, as real proxies ask). */
function message(base: ProxySnapshot | null, next: ProxySnapshot): SnapshotMessage {
  const delta = encodeDelta(base ? splitSnapshot(base, 2).groups : null, splitSnapshot(next, 2).groups);
  const line = `{"v":${PROTOCOL_VERSION},"type":"snapshot","version":${JSON.stringify(next.version)},"base":${JSON.stringify(base?.version ?? null)},"resources":${delta.resources},"removed":${JSON.stringify(delta.removed)}}`;
  const msg = decodeOperatorMessage(line);
  if (msg.type !== 'snapshot') throw new Error('not a snapshot message');
  return msg;
}

/** A client that holds `base` (received in full and accepted by the gate). */
function clientHolding(base: ProxySnapshot): HeldState {
  const first = reassemble(null, message(null, base));
  if (!first.ok) throw new Error(first.reason);
  expect(validateProxySnapshot(first.snapshot).ok).toBe(true);
  return first.state;
}

/** What the client's gate says about a delta from `base` to `next`. */
function gateOnDelta(held: HeldState, base: ProxySnapshot, next: ProxySnapshot): ReturnType<typeof validateProxySnapshot> {
  const result = reassemble(held, message(base, next));
  if (!result.ok) throw new Error(result.reason);
  expect(isDeepFrozen(result.snapshot)).toBe(true);
  return validateProxySnapshot(result.snapshot);
}

function mutated(base: ProxySnapshot, change: (s: Mutable) => void): ProxySnapshot {
  const copy = JSON.parse(JSON.stringify(base)) as Mutable;
  change(copy);
  return withVersion(copy as ProxySnapshot);
}

describe('incremental validation of reassembled snapshots', () => {
  it('refuses a delta that removes a cluster an unchanged virtual host routes to', () => {
    const base = richSnapshot();
    const held = clientHolding(base);
    // Only the cluster and its endpoints leave; the virtual host routing to b is not in the delta.
    const next = mutated(base, (s) => {
      s.clusters = s.clusters.filter((c: Mutable) => c.name !== 'b');
      s.endpoints = s.endpoints.filter((e: Mutable) => e.cluster !== 'b');
    });
    const delta = message(base, next);
    expect(Object.keys(delta.resources).some((name) => name.startsWith('virtualHost/'))).toBe(false);
    expect(delta.removed).toContain('cluster/b');
    const incrementalBefore = snapshotValidationCounters.incremental;
    const checked = gateOnDelta(held, base, next);
    expect(snapshotValidationCounters.incremental).toBe(incrementalBefore + 1);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.errors.join('\n')).toMatch(/cluster "b" is not in the snapshot|unknown cluster b/);
  });

  it('refuses a delta that removes the route config an unchanged listener names, or the cluster an unchanged mirror names', () => {
    const base = richSnapshot();
    const noGatewayRoutes = mutated(base, (s) => {
      s.routeConfigs = s.routeConfigs.filter((rc: Mutable) => rc.name !== 'gateway-80');
    });
    expect(gateOnDelta(clientHolding(base), base, noGatewayRoutes).ok).toBe(false);
    const noMirrorCluster = mutated(base, (s) => {
      s.clusters = s.clusters.filter((c: Mutable) => c.name !== 'c');
      s.endpoints = s.endpoints.filter((e: Mutable) => e.cluster !== 'c');
    });
    expect(gateOnDelta(clientHolding(base), base, noMirrorCluster).ok).toBe(false);
  });

  it('accepts a delta that changes one route, through the per-resource path', () => {
    const base = richSnapshot();
    const held = clientHolding(base);
    const next = mutated(base, (s) => {
      s.routeConfigs[0].virtualHosts[1].routes[0].timeoutMs = 2500;
    });
    const before = { ...snapshotValidationCounters };
    const checked = gateOnDelta(held, base, next);
    expect(checked.ok).toBe(true);
    expect(snapshotValidationCounters.incremental).toBe(before.incremental + 1);
    expect(snapshotValidationCounters.whole).toBe(before.whole);
  });

  // Each change is a delta from the same base; the per-resource path must agree with the whole check.
  const changes: Array<[string, (s: Mutable) => void]> = [
    ['route timeout (valid)', (s) => (s.routeConfigs[0].virtualHosts[0].routes[1].timeoutMs = 100)],
    ['new cluster (valid)', (s) => s.clusters.push({ ...s.clusters[0], name: 'd' })],
    ['another cluster (valid)', (s) => (s.clusters = s.clusters.concat([{ ...s.clusters[0], name: 'e' }]))],
    ['route to a builtin cluster (valid)', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action.destinations[0].cluster = 'BlackHoleCluster')],
    ['route to InboundPassthroughCluster (schema allows, shape check refuses)', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action.destinations[0].cluster = 'InboundPassthroughCluster')],
    ['cluster without connectionPool', (s) => delete s.clusters[1].connectionPool],
    ['cluster name not a string', (s) => (s.clusters[2].name = 7)],
    ['duplicate cluster name', (s) => s.clusters.push({ ...s.clusters[0] })],
    ['endpoint port 0', (s) => (s.endpoints[0].endpoints[0].port = 0)],
    ['endpoints for an unknown cluster', (s) => (s.endpoints[1].cluster = 'nope')],
    ['endpoints not a list', (s) => (s.endpoints[2].endpoints = {})],
    ['domains not a list', (s) => (s.routeConfigs[0].virtualHosts[1].domains = 'b')],
    ['unknown action kind', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action.kind = 'bogus')],
    ['no destinations', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action.destinations = [])],
    ['destination to an unknown cluster', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action.destinations[0].cluster = 'nope')],
    ['negative weight', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action.destinations[0].weight = -1)],
    ['mirror to an unknown cluster', (s) => (s.routeConfigs[0].virtualHosts[0].routes[1].mirrors[0].cluster = 'nope')],
    ['uri regex that RE2 refuses', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].match[0].uri.regex = '(')],
    ['header regex that RE2 refuses', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].match[0].headers['x-user'].regex = '(?<=x)')],
    ['rewrite regex that RE2 refuses', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].rewrite = { uriRegex: { match: '(', substitution: '/' } })],
    ['CORS origin regex that RE2 refuses', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].cors = { allowOrigins: [{ regex: '(' }], allowMethods: [], allowHeaders: [], exposeHeaders: [] })],
    ['redirect without a code', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action = { kind: 'redirect', redirect: {} })],
    ['direct response status 99', (s) => (s.routeConfigs[0].virtualHosts[1].routes[0].action = { kind: 'directResponse', status: 99 })],
    ['route without retry', (s) => delete s.routeConfigs[0].virtualHosts[1].routes[0].retry],
    ['duplicate route config name', (s) => (s.routeConfigs[1].name = 'outbound')],
    ['listener to an unknown route config', (s) => (s.listeners[0].routeConfig = 'nope')],
    ['listener port 70000', (s) => (s.listeners[0].port = 70000)],
    ['mesh without trustDomain', (s) => delete s.mesh.trustDomain],
    ['inbound mtlsMode unknown', (s) => (s.inbound.mtlsMode = 'SOMETIMES')],
    ['telemetry encoding unknown', (s) => (s.telemetry.accessLogEncoding = 'XML')],
    ['meshVersion not a string', (s) => (s.meshVersion = 3)],
  ];

  it.each(changes)('decides as the whole-snapshot check: %s', (_name, change) => {
    const base = richSnapshot();
    const held = clientHolding(base);
    const next = mutated(base, change);
    const whole = validateWhole(JSON.parse(JSON.stringify(next)));
    const incremental = gateOnDelta(held, base, next);
    expect(incremental.ok).toBe(whole.ok);
    // A refusal carries the whole check's errors (the NACK reason names the field).
    if (!incremental.ok && !whole.ok) expect(incremental.errors).toEqual(whole.errors);
  });

  it('refuses most of the changes above (the comparison is not vacuous)', () => {
    const base = richSnapshot();
    const refused = changes.filter(([, change]) => !validateWhole(mutated(base, change)).ok).length;
    expect(refused).toBe(changes.length - 4);
  });
});

describe('a real discovery client NACKs a delta that breaks an unchanged reference', () => {
  let server: DiscoveryServer | null = null;
  let client: DiscoveryClient | null = null;
  afterEach(async () => {
    await client?.stop();
    await server?.close();
    client = null;
    server = null;
  });

  it('keeps the running snapshot and reports the missing cluster', async () => {
    let current = richSnapshot();
    const s = createDiscoveryServer({ render: (proxy) => withVersion({ ...current, proxy }), debounceMs: 10 });
    server = s;
    const { url } = await s.listen(0);
    const rejected: string[] = [];
    const c = startDiscoveryClient({
      url,
      identity: current.proxy,
      apply: (snap) => {
        const checked = validateProxySnapshot(snap);
        return checked.ok ? { ok: true } : { ok: false, error: checked.errors.join('; ') };
      },
    });
    client = c;
    c.events.on('event', (e) => {
      if (e.type === 'rejected') rejected.push(e.reason);
    });
    await waitFor(() => c.runningHash !== null, 'first snapshot applied');
    const running = c.runningHash;
    current = mutated(current, (snap) => {
      snap.clusters = snap.clusters.filter((cl: Mutable) => cl.name !== 'b');
      snap.endpoints = snap.endpoints.filter((e: Mutable) => e.cluster !== 'b');
    });
    s.configChanged('cluster b removed');
    await waitFor(() => rejected.length > 0, 'the delta rejected');
    expect(rejected[0]).toMatch(/"b"|cluster b/);
    expect(c.runningHash).toBe(running);
    expect(c.counters.fullSnapshots).toBe(1);
  });
});
