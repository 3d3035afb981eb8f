import type { IstioOperatorSpec } from '../../mesh/api/index.js';
import { MESH_CONFIG_DEFAULTS } from './mesh-defaults.js';

/**
 * `default`: what production meshes start from, and the base every other profile is laid on (as istioctl
 * does). Control plane and ingress gateway on, egress gateway off; Istio's MeshConfig defaults spelled out.
 */
export const DEFAULT_PROFILE: IstioOperatorSpec = {
  namespace: 'istio-system',
  components: {
    base: { enabled: true },
    pilot: { enabled: true },
    ingressGateways: [{ name: 'istio-ingressgateway', enabled: true }],
    egressGateways: [{ name: 'istio-egressgateway', enabled: false }],
  },
  meshConfig: structuredClone(MESH_CONFIG_DEFAULTS) as IstioOperatorSpec['meshConfig'],
  values: {
    global: { istioNamespace: 'istio-system', configValidation: true },
  },
};
