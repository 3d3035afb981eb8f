import { describe, expect, test } from '@jest/globals';
import type { Endpoint, ProxySnapshot } from '../../src/mesh/snapshot.js';
import { autoMutualTls } from '../../src/proxy/mesh-security.js';
import { cluster, snapshot } from '../proxy/fixtures.js';

/** The per-cluster auto mTLS decision the mesh agent makes for the proxy (which asks per cluster). */
const NAME = 'outbound|9080||reviews.bookinfo.svc.cluster.local';
const sidecar = (sa: string): Endpoint => ({ address: '10.0.0.1', port: 9080, labels: {}, tlsMode: 'istio', serviceAccount: sa, namespace: 'bookinfo', weight: 1 });
const plain: Endpoint = { address: '10.0.0.9', port: 9080, labels: {}, tlsMode: 'disabled', weight: 1 };
const snap = (eps: Endpoint[], enableAutoMtls = true): ProxySnapshot => {
  const s = snapshot({ clusters: [cluster(NAME)], endpoints: { [NAME]: eps } });
  return { ...s, mesh: { ...s.mesh, enableAutoMtls } };
};

describe('autoMutualTls', () => {
  test('every endpoint has a sidecar: ISTIO_MUTUAL expecting the endpoints\' service accounts', () => {
    const out = autoMutualTls(cluster(NAME), snap([sidecar('reviews'), sidecar('reviews'), sidecar('reviews-v3')]), 'cluster.local');
    expect(out?.tls).toEqual({
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://cluster.local/ns/bookinfo/sa/reviews', 'spiffe://cluster.local/ns/bookinfo/sa/reviews-v3'],
    });
  });

  test('plaintext when an endpoint has no sidecar, when there are no endpoints, or with enableAutoMtls off', () => {
    expect(autoMutualTls(cluster(NAME), snap([sidecar('reviews'), plain]), 'cluster.local')).toBeUndefined();
    expect(autoMutualTls(cluster(NAME), snap([]), 'cluster.local')).toBeUndefined();
    expect(autoMutualTls(cluster(NAME), snap([sidecar('reviews')], false), 'cluster.local')).toBeUndefined();
    expect(autoMutualTls(cluster(NAME), undefined, 'cluster.local')).toBeUndefined();
  });

  test('an endpoint without a known account: mTLS without secure naming', () => {
    const anonymous: Endpoint = { ...sidecar('x'), serviceAccount: undefined };
    expect(autoMutualTls(cluster(NAME), snap([anonymous]), 'cluster.local')?.tls).toEqual({ mode: 'ISTIO_MUTUAL', subjectAltNames: [] });
  });
});
