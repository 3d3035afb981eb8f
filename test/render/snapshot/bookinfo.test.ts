import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { parseDocuments } from '../../../src/mesh/load.js';
import type { MeshObject } from '../../../src/mesh/object.js';
import type { ProxySnapshot, Route, VirtualHost } from '../../../src/mesh/snapshot.js';
import { buildProxySnapshot } from '../../../src/render/snapshot/index.js';
import { SHARED_ISTIO, describeWithIstioFixtures } from '../../helpers/shared.js';
import { clusterOf, endpointOf, proxyOf } from './fixtures.js';

const SAMPLES = join(SHARED_ISTIO, 'bookinfo-networking');

function load(...files: string[]): MeshObject[] {
  return files.flatMap((f) => {
    const { objects, diagnostics } = parseDocuments(readFileSync(join(SAMPLES, f), 'utf8'), f);
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    return objects;
  });
}

const endpoints = [
  ...['v1', 'v2', 'v3'].map((v, i) =>
    endpointOf({ service: 'reviews', address: `10.0.0.${i + 1}`, labels: { app: 'reviews', version: v }, serviceAccount: 'bookinfo-reviews' }),
  ),
  endpointOf({ service: 'ratings', address: '10.0.1.1', labels: { app: 'ratings', version: 'v1' }, serviceAccount: 'bookinfo-ratings' }),
  endpointOf({ service: 'details', address: '10.0.2.1', labels: { app: 'details', version: 'v1' }, serviceAccount: 'bookinfo-details' }),
  endpointOf({ service: 'productpage', address: '10.0.3.1', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' }),
];
const productpage = proxyOf({ namespace: 'default', workload: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' });

function render(...files: string[]): ProxySnapshot {
  return buildProxySnapshot({ cluster: clusterOf(load(...files)), endpoints, proxy: productpage });
}

function host(snapshot: ProxySnapshot, name: string): VirtualHost {
  const vh = snapshot.routeConfigs[0].virtualHosts.find((v) => v.name === `${name}.default.svc.cluster.local`);
  if (!vh) throw new Error(`no virtual host for ${name}`);
  return vh;
}

function targets(route: Route): Array<[string, number]> {
  if (route.action.kind !== 'route') throw new Error(`${route.name} is a ${route.action.kind}`);
  return route.action.destinations.map((d) => [d.cluster, d.weight]);
}

describeWithIstioFixtures('bookinfo samples render as Istio routes them', () => {
  test('virtual-service-reviews-jason-v2-v3: header match to v2, then the default route to v3', () => {
    const snapshot = render('virtual-service-reviews-jason-v2-v3.yaml', 'destination-rule-all.yaml');
    const routes = host(snapshot, 'reviews').routes;
    expect(routes).toHaveLength(2);
    expect(routes[0].match).toEqual([{ headers: { 'end-user': { exact: 'jason' } } }]);
    expect(targets(routes[0])).toEqual([['outbound|9080|v2|reviews.default.svc.cluster.local', 100]]);
    expect(routes[1].match).toEqual([]);
    expect(targets(routes[1])).toEqual([['outbound|9080|v3|reviews.default.svc.cluster.local', 100]]);
    // no VirtualService for ratings: a default route to the service's cluster
    expect(targets(host(snapshot, 'ratings').routes[0])).toEqual([['outbound|9080||ratings.default.svc.cluster.local', 100]]);
    const v2 = snapshot.endpoints.find((e) => e.cluster === 'outbound|9080|v2|reviews.default.svc.cluster.local');
    expect(v2?.endpoints.map((e) => e.address)).toEqual(['10.0.0.2']);
  });

  test('virtual-service-reviews-80-20: relative weights', () => {
    const routes = host(render('virtual-service-reviews-80-20.yaml', 'destination-rule-all.yaml'), 'reviews').routes;
    expect(targets(routes[0])).toEqual([
      ['outbound|9080|v1|reviews.default.svc.cluster.local', 80],
      ['outbound|9080|v2|reviews.default.svc.cluster.local', 20],
    ]);
  });

  test('fault-injection-details-v1: abort 555 for everyone, no retries, later rule not emitted', () => {
    const routes = host(render('fault-injection-details-v1.yaml'), 'details').routes;
    expect(routes).toHaveLength(1);
    expect(routes[0].fault).toEqual({ abort: { httpStatus: 555, percent: 100 } });
    expect(routes[0].retry.attempts).toBe(0);
    expect(routes[0].timeoutMs).toBeUndefined();
  });

  test('virtual-service-ratings-test-delay: delay for jason only, the other route keeps the default retries', () => {
    const routes = host(render('virtual-service-ratings-test-delay.yaml', 'destination-rule-all.yaml'), 'ratings').routes;
    expect(routes[0].fault?.delay).toEqual({ fixedDelayMs: 7000, percent: 100 });
    expect(routes[0].retry.attempts).toBe(0);
    expect(routes[1].fault).toBeUndefined();
    expect(routes[1].retry.attempts).toBe(2);
    expect(routes[1].retry.retriableStatusCodes).toEqual([]);
  });

  test('destination-rule-all-mtls: ISTIO_MUTUAL with the service accounts as subject alt names', () => {
    const snapshot = render('virtual-service-all-v1.yaml', 'destination-rule-all-mtls.yaml');
    const cluster = snapshot.clusters.find((c) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local');
    expect(cluster?.tls).toEqual({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews'] });
    expect(cluster?.lb).toEqual({ simple: 'LEAST_REQUEST' });
  });

  test('bookinfo-gateway: the ingress gateway gets a listener on 8080 and the productpage routes', () => {
    const objects = load('bookinfo-gateway.yaml', 'destination-rule-all.yaml');
    const gateway = proxyOf({ namespace: 'istio-system', workload: 'istio-ingressgateway', labels: { istio: 'ingressgateway' }, mode: 'gateway' });
    const snapshot = buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy: gateway });
    expect(snapshot.listeners.map((l) => [l.name, l.protocol, l.routeConfig])).toEqual([['0.0.0.0_8080', 'HTTP', 'http.8080']]);
    const vh = snapshot.routeConfigs[0].virtualHosts;
    expect(vh.map((v) => v.domains)).toEqual([['*']]);
    expect(vh[0].routes[0].match).toHaveLength(5);
    expect(targets(vh[0].routes[0])).toEqual([['outbound|9080||productpage.default.svc.cluster.local', 100]]);
    // the sidecar of productpage sees no gateway routes
    const sidecar = buildProxySnapshot({ cluster: clusterOf(objects), endpoints, proxy: productpage });
    expect(sidecar.listeners).toEqual([]);
    expect(sidecar.routeConfigs.map((r) => r.name)).toEqual(['outbound']);
  });

  test('egress-rule-google-apis: port 80 routed to the 443 cluster, which originates TLS', () => {
    const snapshot = render('egress-rule-google-apis.yaml');
    const vh = snapshot.routeConfigs[0].virtualHosts.find((v) => v.name === 'www.googleapis.com');
    expect(vh?.routes.map(targets)).toEqual([[['outbound|443||www.googleapis.com', 100]]]);
    expect(snapshot.clusters.find((c) => c.name === 'outbound|443||www.googleapis.com')?.tls?.mode).toBe('SIMPLE');
    expect(snapshot.clusters.find((c) => c.name === 'outbound|80||www.googleapis.com')?.tls).toBeUndefined();
  });
});
