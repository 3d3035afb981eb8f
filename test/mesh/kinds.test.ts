import { describe, expect, it } from '@jest/globals';
import { lookupKind, MESH_KINDS, UNSUPPORTED_KINDS } from '../../src/mesh/kinds.js';
import { SPEC_VALIDATORS } from '../../src/mesh/validators/index.js';

describe('kinds table', () => {
  it('lists every in-scope kind once, with the served versions of ISTIO-SEMANTICS §1.1', () => {
    const served = Object.fromEntries(MESH_KINDS.map((k) => [k.kind, `${k.group} ${[...k.versions].sort().join(',')}`]));
    expect(served).toEqual({
      VirtualService: 'networking.istio.io v1,v1alpha3,v1beta1',
      DestinationRule: 'networking.istio.io v1,v1alpha3,v1beta1',
      Gateway: 'networking.istio.io v1,v1alpha3,v1beta1',
      ServiceEntry: 'networking.istio.io v1,v1alpha3,v1beta1',
      Sidecar: 'networking.istio.io v1,v1alpha3,v1beta1',
      WorkloadEntry: 'networking.istio.io v1,v1alpha3,v1beta1',
      PeerAuthentication: 'security.istio.io v1,v1beta1',
      AuthorizationPolicy: 'security.istio.io v1,v1beta1',
      RequestAuthentication: 'security.istio.io v1,v1beta1',
      Telemetry: 'telemetry.istio.io v1,v1alpha1',
      IstioOperator: 'install.istio.io v1alpha1',
      Fleet: 'trellis.dev v1alpha1',
      ClusterStatus: 'trellis.dev v1alpha1',
    });
    expect(new Set(MESH_KINDS.map((k) => k.plural)).size).toBe(MESH_KINDS.length);
  });

  it('has a semantic validator for every Istio kind and the Fleet', () => {
    for (const info of MESH_KINDS) {
      if (info.kind === 'ClusterStatus') continue; // written by the operator; schema-checked only
      expect(SPEC_VALIDATORS[info.kind]).toBeDefined();
    }
  });

  it('classifies apiVersion + kind', () => {
    expect(lookupKind('networking.istio.io/v1beta1', 'VirtualService')).toMatchObject({ status: 'supported', version: 'v1beta1' });
    expect(lookupKind('networking.istio.io/v1alpha1', 'VirtualService')).toMatchObject({ status: 'unserved-version' });
    expect(lookupKind('security.istio.io/v1alpha3', 'PeerAuthentication').status).toBe('unserved-version');
    expect(lookupKind('networking.istio.io/v1alpha3', 'EnvoyFilter').status).toBe('unsupported');
    expect(lookupKind('v1', 'Service')).toMatchObject({ status: 'kubernetes', informational: true });
    expect(lookupKind('apps/v1', 'Deployment')).toMatchObject({ status: 'kubernetes', informational: false });
    expect(lookupKind('example.com/v1', 'VirtualService').status).toBe('unknown');
    for (const k of UNSUPPORTED_KINDS) expect(lookupKind(`${k.group}/v1`, k.kind).status).toBe('unsupported');
  });
});
