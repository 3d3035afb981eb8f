import { describe, expect, test } from '@jest/globals';
import type { HTTPMatchRequest } from '../../../src/mesh/api/index.js';
import { mergeHttpMatches, mergeHttpRoute } from '../../../src/render/snapshot/delegate.js';
import { buildClusterIndex, buildProxySnapshotFromIndex } from '../../../src/render/snapshot/index.js';
import { clusterOf, endpointOf, objectsFromYaml, proxyOf } from './fixtures.js';

/** Istio's delegate merge rules (pilot/pkg/model/virtualservice.go), and re-rendering when only a delegate changes. */
describe('delegate match merging', () => {
  const prefix = (p: string): HTTPMatchRequest => ({ uri: { prefix: p } });

  test('a delegate match must fall within a root match', () => {
    expect(mergeHttpMatches([prefix('/api')], [prefix('/api/v1')])).toEqual([prefix('/api/v1')]);
    expect(mergeHttpMatches([prefix('/api')], [{ uri: { exact: '/api/x' } }])).toEqual([{ uri: { exact: '/api/x' } }]);
    expect(mergeHttpMatches([prefix('/api/v1')], [prefix('/api')])).toBeUndefined();
    expect(mergeHttpMatches([{ uri: { exact: '/a' } }], [prefix('/a')])).toBeUndefined();
    expect(mergeHttpMatches([{ uri: { regex: '/a.*' } }], [prefix('/a')])).toBeUndefined();
  });

  test('each compatible root match gives one merged match; fields the delegate leaves out come from the root', () => {
    const root: HTTPMatchRequest[] = [
      { name: 'eu', uri: { prefix: '/api' }, headers: { region: { exact: 'eu' } }, port: 8080 },
      { name: 'us', uri: { prefix: '/api' }, headers: { region: { exact: 'us' } } },
      { name: 'web', uri: { prefix: '/web' } },
    ];
    expect(mergeHttpMatches(root, [{ name: 'v1', uri: { prefix: '/api/v1' }, queryParams: { debug: { exact: '1' } } }])).toEqual([
      { name: 'eu-v1', uri: { prefix: '/api/v1' }, headers: { region: { exact: 'eu' } }, queryParams: { debug: { exact: '1' } }, port: 8080 },
      { name: 'us-v1', uri: { prefix: '/api/v1' }, headers: { region: { exact: 'us' } }, queryParams: { debug: { exact: '1' } } },
    ]);
  });

  test('conflicting headers, ports, ignoreUriCase or gateways drop the pair', () => {
    const root: HTTPMatchRequest = { uri: { prefix: '/' }, headers: { env: { exact: 'prod' } }, port: 80, gateways: ['mesh'] };
    expect(mergeHttpMatches([root], [{ headers: { env: { exact: 'dev' } } }])).toBeUndefined();
    expect(mergeHttpMatches([root], [{ port: 81 }])).toBeUndefined();
    expect(mergeHttpMatches([root], [{ ignoreUriCase: true }])).toBeUndefined();
    expect(mergeHttpMatches([root], [{ gateways: ['ns/gw'] }])).toBeUndefined();
    expect(mergeHttpMatches([root], [{ headers: { env: { exact: 'prod' } }, port: 80 }])).toEqual([{ ...root }]);
  });

  test('no matches on either side: the other side\'s matches are used', () => {
    expect(mergeHttpMatches([], [prefix('/x')])).toEqual([prefix('/x')]);
    expect(mergeHttpMatches([prefix('/x')], [])).toEqual([prefix('/x')]);
  });

  test('route policies the delegate route does not set come from the root route; its own win', () => {
    const merged = mergeHttpRoute(
      { name: 'root', timeout: '5s', retries: { attempts: 4 }, rewrite: { uri: '/' }, delegate: { name: 'd' } },
      { name: 'leaf', timeout: '1s', route: [{ destination: { host: 'a' } }] },
    );
    expect(merged).toEqual({ name: 'root-leaf', timeout: '1s', retries: { attempts: 4 }, rewrite: { uri: '/' }, route: [{ destination: { host: 'a' } }] });
  });
});

describe('delegate VirtualServices in the cluster index', () => {
  const config = (delegateHost: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: default}
spec:
  hosts: [shop]
  http:
    - match: [{uri: {prefix: /api}}]
      delegate: {name: api}
    - route: [{destination: {host: shop}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  http:
    - route: [{destination: {host: ${delegateHost}}}]
`;
  const endpoints = ['shop', 'api-v1', 'api-v2'].map((service, i) => endpointOf({ service, address: `10.0.0.${i + 1}` }));
  const proxy = proxyOf({ namespace: 'default', workload: 'web' });
  const shopRoutes = (snapshot: ReturnType<typeof buildProxySnapshotFromIndex>) =>
    snapshot.routeConfigs[0].virtualHosts.find((h) => h.name === 'shop.default.svc.cluster.local')!.routes;

  test('a change to the delegate alone re-renders the root (incremental index)', () => {
    const first = buildClusterIndex(clusterOf(objectsFromYaml(config('api-v1'))), endpoints);
    const before = shopRoutes(buildProxySnapshotFromIndex(first, proxy));
    expect(before[0].action).toEqual({ kind: 'route', destinations: [{ cluster: 'outbound|9080||api-v1.default.svc.cluster.local', weight: 100 }] });
    const next = buildClusterIndex(clusterOf(objectsFromYaml(config('api-v2'))), endpoints, first);
    const after = shopRoutes(buildProxySnapshotFromIndex(next, proxy));
    expect(after[0].match).toEqual([{ uri: { prefix: '/api' } }]);
    expect(after[0].action).toEqual({ kind: 'route', destinations: [{ cluster: 'outbound|9080||api-v2.default.svc.cluster.local', weight: 100 }] });
  });

  test('the delegate itself has no virtual host', () => {
    const index = buildClusterIndex(clusterOf(objectsFromYaml(config('api-v1'))), endpoints);
    expect(index.virtualServices.map((vs) => vs.name)).toEqual(['root']);
  });
});
