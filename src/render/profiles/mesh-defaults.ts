import type { MeshConfig } from '../../mesh/api/index.js';

/**
 * MeshConfig defaults a faithful control plane reproduces when neither the profile nor the IstioOperator
 * sets a field (istio/api mesh/v1alpha1/config.proto; ISTIO-SEMANTICS.md §1.7, §1.2 default retry policy).
 */
const DEFAULTS: MeshConfig = {
  accessLogFile: '',
  accessLogEncoding: 'TEXT',
  enableAutoMtls: true,
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  connectTimeout: '10s',
  protocolDetectionTimeout: '0s',
  dnsRefreshRate: '60s',
  outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
  defaultHttpRetryPolicy: {
    attempts: 2,
    retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  },
  localityLbSetting: { enabled: true },
};

export const MESH_CONFIG_DEFAULTS: Readonly<MeshConfig> = Object.freeze(DEFAULTS);
