import type { IstioOperatorSpec } from '../../mesh/api/index.js';

/** `demo` (overlay on default): everything visible — access logs to stdout, tracing on, egress gateway on. */
export const DEMO_PROFILE: IstioOperatorSpec = {
  components: {
    egressGateways: [{ name: 'istio-egressgateway', enabled: true }],
  },
  meshConfig: {
    accessLogFile: '/dev/stdout',
    enableTracing: true,
  },
  values: { profile: 'demo' },
};
