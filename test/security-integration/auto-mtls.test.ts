import { describe, expect, test } from '@jest/globals';
import type { Endpoint } from '../../src/mesh/snapshot.js';
import { autoMutualTls } from '../../src/proxy/mesh-security.js';

/** The auto mTLS decision for one endpoint (used when the DestinationRule sets no tls mode). */
const sidecar = (serviceAccount?: string): Endpoint => ({
  address: '10.0.0.1', port: 9080, labels: { 'security.istio.io/tlsMode': 'istio' }, tlsMode: 'istio', serviceAccount, namespace: 'bookinfo', weight: 1,
});
const plain: Endpoint = { address: '10.0.0.9', port: 9080, labels: {}, tlsMode: 'disabled', weight: 1 };
const mesh = { enableAutoMtls: true, trustDomain: 'example.org' };

describe('autoMutualTls', () => {
  test('a sidecar endpoint: ISTIO_MUTUAL expecting its service account in the mesh trust domain', () => {
    expect(autoMutualTls(sidecar('reviews-v3'), mesh)).toEqual({
      mode: 'ISTIO_MUTUAL',
      subjectAltNames: ['spiffe://example.org/ns/bookinfo/sa/reviews-v3'],
    });
  });

  test('secure naming: the server may present any of the service\'s accounts (its sidecar endpoints\'), as Istio', () => {
    const peers = [sidecar('reviews-v1'), sidecar('reviews-v3'), sidecar('reviews-v1'), { ...plain, serviceAccount: 'legacy', namespace: 'bookinfo' }];
    expect(autoMutualTls(sidecar('reviews-v1'), mesh, peers)?.subjectAltNames).toEqual([
      'spiffe://example.org/ns/bookinfo/sa/reviews-v1',
      'spiffe://example.org/ns/bookinfo/sa/reviews-v3',
    ]);
    // An endpoint registered without an account still expects the service's accounts.
    expect(autoMutualTls(sidecar(undefined), mesh, peers)?.subjectAltNames).toHaveLength(2);
  });

  test('an endpoint without a sidecar gets plaintext, whatever its neighbours are', () => {
    expect(autoMutualTls(plain, mesh, [sidecar('reviews'), plain])).toBeUndefined();
  });

  test('enableAutoMtls false: plaintext even toward a sidecar', () => {
    expect(autoMutualTls(sidecar('reviews'), { ...mesh, enableAutoMtls: false })).toBeUndefined();
  });

  test('a sidecar endpoint without a known account: mTLS without secure naming', () => {
    expect(autoMutualTls(sidecar(undefined), mesh)).toEqual({ mode: 'ISTIO_MUTUAL', subjectAltNames: [] });
  });
});
