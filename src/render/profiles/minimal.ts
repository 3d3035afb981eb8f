import type { IstioOperatorSpec } from '../../mesh/api/index.js';

/** `minimal` (overlay on default): the control plane only, no ingress gateway. */
export const MINIMAL_PROFILE: IstioOperatorSpec = {
  components: {
    ingressGateways: [{ name: 'istio-ingressgateway', enabled: false }],
  },
};
