import { describe, expect, it } from '@jest/globals';
import { validateSnapshot } from '../../src/mesh/snapshot-schema.js';
import { SNAPSHOT_FORMAT } from '../../src/mesh/snapshot.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';

const retry = { attempts: 2, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'], retriableStatusCodes: [], backoffBaseMs: 25 };
const pool = { maxConnections: 4294967295, connectTimeoutMs: 10000, http1MaxPendingRequests: 4294967295, http2MaxRequests: 4294967295, maxRequestsPerConnection: 0, maxRetries: 4294967295, idleTimeoutMs: 3600000 };

function validSnapshot(): ProxySnapshot {
  return structuredClone(buildSnapshot());
}

function buildSnapshot(): ProxySnapshot {
  return {
    format: SNAPSHOT_FORMAT,
    version: '0123456789abcdef',
    meshVersion: '1.16.1',
    proxy: { id: 'dev/bookinfo/productpage/0', cluster: 'dev', namespace: 'bookinfo', workload: 'productpage', labels: { app: 'productpage' }, serviceAccount: 'bookinfo-productpage', mode: 'sidecar' },
    mesh: { trustDomain: 'cluster.local', rootNamespace: 'istio-system', enableAutoMtls: true, outboundTrafficPolicy: 'ALLOW_ANY', connectTimeoutMs: 10000, defaultRetry: retry, extensionProviders: [] },
    routeConfigs: [
      {
        name: 'outbound',
        virtualHosts: [
          {
            name: 'reviews.bookinfo.svc.cluster.local:9080',
            domains: ['reviews', 'reviews.bookinfo.svc.cluster.local'],
            routes: [
              {
                name: 'bookinfo/reviews/0',
                match: [{ headers: { 'end-user': { exact: 'jason' } }, uri: { regex: '^/reviews/[0-9]+$' } }],
                action: { kind: 'route', destinations: [{ cluster: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local', weight: 100 }] },
                retry,
                mirrors: [],
              },
              {
                name: 'bookinfo/reviews/1',
                match: [],
                action: { kind: 'route', destinations: [{ cluster: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', weight: 1 }] },
                retry,
                timeoutMs: 5000,
                mirrors: [{ cluster: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local', percent: 10 }],
              },
              { name: 'bookinfo/reviews/2', match: [{ uri: { prefix: '/old' } }], action: { kind: 'redirect', redirect: { uri: '/new', code: 301 } }, retry, mirrors: [] },
            ],
          },
        ],
      },
    ],
    clusters: ['v1', 'v2'].map((subset) => ({
      name: `outbound|9080|${subset}|reviews.bookinfo.svc.cluster.local`,
      service: 'reviews.bookinfo.svc.cluster.local',
      port: 9080,
      subset,
      lb: { simple: 'LEAST_REQUEST' as const },
      connectionPool: pool,
    })),
    endpoints: [{ cluster: 'outbound|9080|v1|reviews.bookinfo.svc.cluster.local', endpoints: [{ address: '127.0.0.1', port: 19080, labels: { version: 'v1' }, tlsMode: 'istio', weight: 1 }] }],
    listeners: [],
    inbound: { mtlsMode: 'PERMISSIVE', portLevelMtls: { '9080': 'STRICT' }, authorization: [{ name: 'bookinfo/allow-get', action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }], jwtRules: [] },
    telemetry: { accessLog: true, accessLogEncoding: 'JSON', metrics: true, tracingSamplingPercent: 1 },
  };
}

type Mutate = (s: any) => void;

describe('validateSnapshot', () => {
  it('accepts a valid snapshot and returns it typed', () => {
    const snapshot = validSnapshot();
    const result = validateSnapshot(JSON.parse(JSON.stringify(snapshot)));
    expect(result).toEqual({ ok: true, snapshot });
  });

  it('accepts unknown fields (wire-format forward compatibility)', () => {
    const s: any = validSnapshot();
    s.futureField = { x: 1 };
    s.clusters[0].futureKnob = true;
    expect(validateSnapshot(s).ok).toBe(true);
  });

  const invalid: Array<[string, Mutate, string]> = [
    ['not an object', () => undefined, 'snapshot: must be object'],
    ['wrong format', (s) => (s.format = 'trellis.dev/snapshot/v0'), 'snapshot.format: must be equal to constant'],
    ['missing proxy', (s) => delete s.proxy, 'snapshot: missing required field "proxy"'],
    ['bad version hash', (s) => (s.version = 'XYZ'), 'snapshot.version: must match pattern'],
    ['negative weight', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].action.destinations[0].weight = -1), 'destinations[0].weight: must be >= 0'],
    ['unknown action kind', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].action = { kind: 'teleport' }), 'routes[0].action.kind'],
    ['unknown lb', (s) => (s.clusters[0].lb = { simple: 'FASTEST' }), 'snapshot.clusters[0].lb'],
    ['bad mtls mode', (s) => (s.inbound.mtlsMode = 'STRICTEST'), 'snapshot.inbound.mtlsMode: must be one of STRICT, PERMISSIVE, DISABLE'],
    ['matcher with two kinds', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].match[0].uri = { exact: '/a', prefix: '/b' }), 'match[0].uri: must match exactly one schema'],
    ['lookahead regex', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].match[0].uri = { regex: '(?=x)' }), 'match[0].uri.regex: regex "(?=x)" does not compile under RE2'],
    ['backreference in header regex', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].match[0].headers['end-user'] = { regex: '(a)\\1' }), 'headers["end-user"].regex'],
    ['route to a missing cluster', (s) => (s.routeConfigs[0].virtualHosts[0].routes[0].action.destinations[0].cluster = 'outbound|9080|v9|reviews'), 'destinations[0].cluster: cluster "outbound|9080|v9|reviews" is not in the snapshot'],
    ['mirror to a missing cluster', (s) => (s.routeConfigs[0].virtualHosts[0].routes[1].mirrors[0].cluster = 'nowhere'), 'routes[1].mirrors[0].cluster: cluster "nowhere" is not in the snapshot'],
    ['endpoints for a missing cluster', (s) => (s.endpoints[0].cluster = 'ghost'), 'snapshot.endpoints[0].cluster'],
    ['listener to a missing route config', (s) => s.listeners.push({ name: '0.0.0.0_8080', port: 8080, protocol: 'HTTP', hosts: ['*'], routeConfig: 'http.8080' }), 'snapshot.listeners[0].routeConfig: route config "http.8080" is not in the snapshot'],
    ['duplicate cluster', (s) => s.clusters.push({ ...s.clusters[0] }), 'snapshot.clusters[2].name: duplicate cluster'],
  ];

  it.each(invalid)('rejects: %s', (_name, mutate, expected) => {
    const s: any = validSnapshot();
    const input = _name === 'not an object' ? 'nope' : s;
    mutate(s);
    const result = validateSnapshot(input);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.join('\n')).toContain(expected);
  });

  it('never throws on mutated snapshots (seeded)', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    const values: unknown[] = [null, 0, -1, 'x', '(?=', [], {}, true, { kind: 'route' }, [{}]];
    const paths = (v: unknown, p: Array<string | number> = [], out: Array<Array<string | number>> = []) => {
      if (Array.isArray(v)) v.forEach((x, i) => { out.push([...p, i]); paths(x, [...p, i], out); });
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { out.push([...p, k]); paths(x, [...p, k], out); }
      return out;
    };
    const all = paths(validSnapshot());
    let rejected = 0;
    for (let n = 0; n < 400; n++) {
      const s: any = validSnapshot();
      const path = all[Math.floor(random() * all.length)];
      let node = s;
      for (const key of path.slice(0, -1)) node = node[key];
      node[path[path.length - 1]] = values[Math.floor(random() * values.length)];
      const result = validateSnapshot(s);
      if (!result.ok) {
        rejected++;
        expect(result.errors.length).toBeGreaterThan(0);
        for (const e of result.errors) expect(e).toMatch(/^snapshot/);
      }
    }
    expect(rejected).toBeGreaterThan(100);
  });

  it('builtin clusters need no definition', () => {
    const s: any = validSnapshot();
    s.routeConfigs[0].virtualHosts[0].routes[0].action.destinations[0].cluster = 'PassthroughCluster';
    expect(validateSnapshot(s).ok).toBe(true);
  });
});
