import { describe, expect, test } from '@jest/globals';
import type { MeshObject } from '../../../src/mesh/object.js';
import type { ProxySnapshot } from '../../../src/mesh/snapshot.js';
import { contentHash } from '../../../src/render/hash.js';
import {
  buildClusterIndex,
  buildProxySnapshot,
  buildProxySnapshotFromIndex,
  resourceHashes,
} from '../../../src/render/snapshot/index.js';
import { clusterOf, endpointOf, objectsFromYaml, proxyOf } from './fixtures.js';

const CONFIG = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - match: [{headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: reviews, subset: v2}}]
    - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
    - route: [{destination: {host: ratings}}]
      timeout: 2s
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`;

const endpoints = [
  endpointOf({ service: 'reviews', address: '10.0.0.1', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'reviews' }),
  endpointOf({ service: 'reviews', address: '10.0.0.2', labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'reviews' }),
  endpointOf({ service: 'ratings', address: '10.0.1.1', labels: { app: 'ratings' }, serviceAccount: 'ratings' }),
];
const proxy = proxyOf({ namespace: 'default', workload: 'productpage', labels: { app: 'productpage' } });

function withoutVersion(s: ProxySnapshot): Omit<ProxySnapshot, 'version'> {
  const { version: _version, ...rest } = s;
  return rest;
}

function changeTimeout(objects: MeshObject[], timeout: string): MeshObject[] {
  return objects.map((o) =>
    o.metadata.name === 'ratings' && o.kind === 'VirtualService'
      ? { ...o, spec: { ...(o.spec as object), http: [{ route: [{ destination: { host: 'ratings' } }], timeout }] } }
      : o,
  );
}

describe('buildProxySnapshot', () => {
  test('version is the content hash of the snapshot without version', () => {
    const snapshot = buildProxySnapshot({ cluster: clusterOf(objectsFromYaml(CONFIG)), endpoints, proxy });
    expect(snapshot.version).toBe(contentHash(withoutVersion(snapshot)));
    expect(snapshot.meshVersion).toBe('1.16.1');
    expect(snapshot.inbound.mtlsMode).toBe('STRICT');
  });

  test('deterministic: object and endpoint order do not change the output', () => {
    const objects = objectsFromYaml(CONFIG);
    const a = buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy });
    const b = buildProxySnapshot({ cluster: clusterOf([...objects].reverse()), endpoints: [...endpoints].reverse(), proxy });
    expect(b).toEqual(a);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  test('the version changes when content does, and only then', () => {
    const objects = objectsFromYaml(CONFIG);
    const base = buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy });
    const same = buildProxySnapshot({ cluster: clusterOf(changeTimeout(objects, '2s')), endpoints, proxy });
    const changed = buildProxySnapshot({ cluster: clusterOf(changeTimeout(objects, '3s')), endpoints, proxy });
    expect(same.version).toBe(base.version);
    expect(changed.version).not.toBe(base.version);
  });

  test('pure: the input is neither mutated nor frozen', () => {
    const objects = objectsFromYaml(CONFIG);
    const before = structuredClone(objects);
    const input = { cluster: clusterOf(objects), endpoints, proxy };
    buildProxySnapshot(input);
    buildProxySnapshot(input);
    expect(objects).toEqual(before);
    expect(Object.isFrozen(objects[0].spec)).toBe(false);
    expect(Object.isFrozen(proxy.labels)).toBe(false);
  });
});

describe('incremental rendering through the cluster index', () => {
  test('a one-object change re-translates only that object and renders what a full render does', () => {
    const objects = objectsFromYaml(CONFIG);
    const first = buildClusterIndex(clusterOf(objects), endpoints);
    const before = buildProxySnapshotFromIndex(first, proxy);

    const changedObjects = changeTimeout(objects, '5s');
    const next = buildClusterIndex(clusterOf(changedObjects), endpoints, first);
    const incremental = buildProxySnapshotFromIndex(next, proxy);
    const full = buildProxySnapshot({ cluster: clusterOf(changedObjects), endpoints, proxy });
    expect(incremental).toEqual(full);
    expect(incremental.version).toBe(full.version);

    const reviewsBefore = before.routeConfigs[0].virtualHosts.find((v) => v.name.startsWith('reviews.'))!;
    const reviewsAfter = incremental.routeConfigs[0].virtualHosts.find((v) => v.name.startsWith('reviews.'))!;
    const ratingsBefore = before.routeConfigs[0].virtualHosts.find((v) => v.name.startsWith('ratings.'))!;
    const ratingsAfter = incremental.routeConfigs[0].virtualHosts.find((v) => v.name.startsWith('ratings.'))!;
    // unchanged VirtualService: the very same translated route objects; changed one: new
    expect(reviewsAfter.routes[0]).toBe(reviewsBefore.routes[0]);
    expect(ratingsAfter.routes[0]).not.toBe(ratingsBefore.routes[0]);
    expect(ratingsAfter.routes[0].timeoutMs).toBe(5000);
    // clusters whose inputs did not change keep their identity too
    expect(incremental.clusters[0]).toBe(before.clusters[0]);
  });

  test('re-parsed (equal but new) objects reuse translations by content hash', () => {
    const first = buildClusterIndex(clusterOf(objectsFromYaml(CONFIG)), endpoints);
    const before = buildProxySnapshotFromIndex(first, proxy);
    const again = buildProxySnapshotFromIndex(buildClusterIndex(clusterOf(objectsFromYaml(CONFIG)), endpoints, first), proxy);
    expect(again.routeConfigs[0].virtualHosts[0].routes[0]).toBe(before.routeConfigs[0].virtualHosts[0].routes[0]);
    expect(again.version).toBe(before.version);
  });

  test('proxies of one namespace share the rendered route config', () => {
    const index = buildClusterIndex(clusterOf(objectsFromYaml(CONFIG)), endpoints);
    const a = buildProxySnapshotFromIndex(index, proxy);
    const b = buildProxySnapshotFromIndex(index, proxyOf({ namespace: 'default', workload: 'details', labels: { app: 'details' } }));
    expect(b.routeConfigs[0]).toBe(a.routeConfigs[0]);
    expect(b.version).not.toBe(a.version); // the proxy identity is part of the snapshot
  });
});

describe('sharing between proxies never changes what a proxy gets', () => {
  const MULTI_NS = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: a}
spec: {host: api, trafficPolicy: {loadBalancer: {simple: RANDOM}}, subsets: [{name: v1, labels: {version: v1}}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api-from-b, namespace: b}
spec: {host: api.a.svc.cluster.local, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: a}
spec:
  hosts: [api]
  http: [{route: [{destination: {host: api, subset: v1}}]}]
`;
  const multiEndpoints = [
    endpointOf({ service: 'api', namespace: 'a', address: '10.1.0.1', labels: { app: 'api', version: 'v1' } }),
    endpointOf({ service: 'web', namespace: 'c', address: '10.3.0.1', labels: { app: 'web' } }),
  ];
  const inNamespace = (ns: string) => proxyOf({ namespace: ns, workload: `w-${ns}`, labels: { app: `w-${ns}` } });

  test('proxies in namespaces a, b, c and d rendered from one index equal proxies rendered alone', () => {
    const cluster = clusterOf(objectsFromYaml(MULTI_NS));
    const index = buildClusterIndex(cluster, multiEndpoints);
    const order = ['c', 'b', 'd', 'a'];
    const shared = order.map((ns) => buildProxySnapshotFromIndex(index, inNamespace(ns)));
    order.forEach((ns, i) => {
      const alone = buildProxySnapshot({ cluster, endpoints: multiEndpoints, proxy: inNamespace(ns) });
      expect(shared[i]).toEqual(alone);
    });
    const lb = (s: ProxySnapshot) => s.clusters.find((c) => c.name === 'outbound|9080||api.a.svc.cluster.local')!.lb;
    // b holds its own DestinationRule for api.a: its proxies use it; everyone else uses a's
    expect(shared.map(lb)).toEqual([{ simple: 'RANDOM' }, { simple: 'ROUND_ROBIN' }, { simple: 'RANDOM' }, { simple: 'RANDOM' }]);
    // c and d share the cluster list; the short name `web` is a domain only in c
    expect(shared[2].clusters).toBe(shared[0].clusters);
    const web = (s: ProxySnapshot) => s.routeConfigs[0].virtualHosts.find((v) => v.name === 'web.c.svc.cluster.local')!.domains;
    expect(web(shared[0])).toContain('web');
    expect(web(shared[2])).not.toContain('web');
  });
});

describe('DestinationRule workloadSelector', () => {
  test('selects the rule per workload: the selected proxy and its neighbour in one index get different clusters', () => {
    const objects = objectsFromYaml(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-for-client, namespace: default}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: client}}
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`);
    const index = buildClusterIndex(clusterOf(objects), endpoints);
    const lb = (labels: Record<string, string>) =>
      buildProxySnapshotFromIndex(index, proxyOf({ namespace: 'default', workload: labels.app, labels }))
        .clusters.find((c) => c.name === 'outbound|9080||reviews.default.svc.cluster.local')!.lb;
    expect(lb({ app: 'client' })).toEqual({ simple: 'ROUND_ROBIN' });
    expect(lb({ app: 'other' })).toEqual({ simple: 'RANDOM' });
    expect(lb({ app: 'client', version: 'v2' })).toEqual({ simple: 'ROUND_ROBIN' });
  });
});

describe('resourceHashes', () => {
  test('names every resource and changes only the hashes of what changed', () => {
    const objects = objectsFromYaml(CONFIG);
    const a = resourceHashes(buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy }));
    expect(Object.keys(a).sort()).toEqual(
      [
        'cluster/outbound|9080|v1|reviews.default.svc.cluster.local',
        'cluster/outbound|9080|v2|reviews.default.svc.cluster.local',
        'cluster/outbound|9080||ratings.default.svc.cluster.local',
        'cluster/outbound|9080||reviews.default.svc.cluster.local',
        'endpoints/outbound|9080|v1|reviews.default.svc.cluster.local',
        'endpoints/outbound|9080|v2|reviews.default.svc.cluster.local',
        'endpoints/outbound|9080||ratings.default.svc.cluster.local',
        'endpoints/outbound|9080||reviews.default.svc.cluster.local',
        'inbound',
        'mesh',
        'routeConfig/outbound',
        'telemetry',
      ].sort(),
    );
    const moved = endpoints.map((e) => (e.address === '10.0.0.2' ? { ...e, address: '10.0.0.9' } : e));
    const b = resourceHashes(buildProxySnapshot({ cluster: clusterOf(objects), endpoints: moved, proxy }));
    const changed = Object.keys(a).filter((k) => a[k] !== b[k]).sort();
    expect(changed).toEqual([
      'endpoints/outbound|9080|v2|reviews.default.svc.cluster.local',
      'endpoints/outbound|9080||reviews.default.svc.cluster.local',
    ]);
  });

  test('a new service account changes the ISTIO_MUTUAL subject alt names (secure naming)', () => {
    const objects = [
      ...objectsFromYaml(CONFIG),
      ...objectsFromYaml(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec: {host: ratings, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
`),
    ];
    const snapshot = buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy });
    const ratings = snapshot.clusters.find((c) => c.name === 'outbound|9080||ratings.default.svc.cluster.local')!;
    expect(ratings.tls).toEqual({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/default/sa/ratings'] });
    const more = [...endpoints, endpointOf({ service: 'ratings', address: '10.0.1.2', labels: { app: 'ratings' }, serviceAccount: 'ratings-v2' })];
    const after = buildProxySnapshot({ cluster: clusterOf(objects), endpoints: more, proxy });
    expect(after.clusters.find((c) => c.name === ratings.name)!.tls!.subjectAltNames).toEqual([
      'spiffe://cluster.local/ns/default/sa/ratings',
      'spiffe://cluster.local/ns/default/sa/ratings-v2',
    ]);
  });
});
