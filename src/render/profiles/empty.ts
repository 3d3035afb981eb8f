import type { IstioOperatorSpec } from '../../mesh/api/index.js';

/** `empty` (overlay on default): every component off; a base for fully custom IstioOperators. */
export const EMPTY_PROFILE: IstioOperatorSpec = {
  components: {
    base: { enabled: false },
    pilot: { enabled: false },
    ingressGateways: [{ name: 'istio-ingressgateway', enabled: false }],
  },
};
