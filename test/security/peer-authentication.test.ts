import { describe, expect, it } from '@jest/globals';
import { resolvePeerAuthentication, type PeerAuthenticationPolicy } from '../../src/security/peer-authentication.js';

const pa = (namespace: string, name: string, spec: PeerAuthenticationPolicy['spec'], creationTimestamp?: string): PeerAuthenticationPolicy => ({ namespace, name, spec, creationTimestamp });
const resolve = (policies: PeerAuthenticationPolicy[], namespace = 'shop', labels: Record<string, string> = { app: 'cart' }) =>
  resolvePeerAuthentication({ rootNamespace: 'istio-system', namespace, labels, policies });

describe('PeerAuthentication precedence', () => {
  const meshStrict = pa('istio-system', 'default', { mtls: { mode: 'STRICT' } });
  const nsPermissive = pa('shop', 'default', { mtls: { mode: 'PERMISSIVE' } });
  const cartDisable = pa('shop', 'cart', { selector: { matchLabels: { app: 'cart' } }, mtls: { mode: 'DISABLE' } });

  it.each([
    ['nothing ⇒ PERMISSIVE', [], 'PERMISSIVE'],
    ['mesh STRICT', [meshStrict], 'STRICT'],
    ['namespace overrides mesh', [meshStrict, nsPermissive], 'PERMISSIVE'],
    ['workload overrides namespace', [meshStrict, nsPermissive, cartDisable], 'DISABLE'],
    ['UNSET workload inherits the namespace', [meshStrict, nsPermissive, pa('shop', 'cart', { selector: { matchLabels: { app: 'cart' } }, mtls: { mode: 'UNSET' } })], 'PERMISSIVE'],
    ['UNSET namespace inherits the mesh', [meshStrict, pa('shop', 'default', { mtls: {} })], 'STRICT'],
    ['a selector in the root namespace is ignored', [pa('istio-system', 'sel', { selector: { matchLabels: { app: 'cart' } }, mtls: { mode: 'DISABLE' } })], 'PERMISSIVE'],
    ['another namespace does not apply', [pa('billing', 'default', { mtls: { mode: 'STRICT' } })], 'PERMISSIVE'],
    ['a non-matching selector does not apply', [pa('shop', 'web', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'STRICT' } })], 'PERMISSIVE'],
    ['the oldest workload policy wins', [pa('shop', 'b', { selector: { matchLabels: { app: 'cart' } }, mtls: { mode: 'STRICT' } }, '2024-01-01T00:00:00Z'), pa('shop', 'a', { selector: { matchLabels: { app: 'cart' } }, mtls: { mode: 'DISABLE' } }, '2024-06-01T00:00:00Z')], 'STRICT'],
  ] as Array<[string, PeerAuthenticationPolicy[], string]>)('%s', (_label, policies, expected) => {
    expect(resolve(policies).mtlsMode).toBe(expected);
  });

  it('takes portLevelMtls from the workload policy; UNSET ports inherit the workload mode', () => {
    const resolved = resolve([
      meshStrict,
      pa('shop', 'cart', { selector: { matchLabels: { app: 'cart' } }, portLevelMtls: { '8080': { mode: 'DISABLE' }, '9090': { mode: 'UNSET' } } }),
    ]);
    expect(resolved).toEqual({ mtlsMode: 'STRICT', portLevelMtls: { '8080': 'DISABLE', '9090': 'STRICT' }, from: ['shop/cart', 'istio-system/default'] });
    expect(resolve([pa('shop', 'default', { portLevelMtls: { '8080': { mode: 'DISABLE' } } })]).portLevelMtls).toEqual({});
  });
});
