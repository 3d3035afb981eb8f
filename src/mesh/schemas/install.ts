/**
 * install.istio.io/v1alpha1 IstioOperator as istioctl reads it. `values`, `unvalidatedValues` and
 * each component's `k8s` are Helm pass-through (open maps); meshConfig types the fields Trellis
 * reads and carries the rest through, since MeshConfig has more fields than any release lists.
 */
import { bool, duration, list, obj, oneOfValues, openMap, str, strList } from './dsl.js';
import type { Schema } from './dsl.js';

const component = obj({ enabled: bool, namespace: str, hub: str, tag: { type: ['string', 'number'] }, k8s: openMap });
const gatewayComponent = obj({
  name: str,
  label: { type: 'object', additionalProperties: str },
  enabled: bool,
  namespace: str,
  hub: str,
  tag: { type: ['string', 'number'] },
  k8s: openMap,
});

const retryPolicy = obj({
  attempts: { type: 'integer' },
  perTryTimeout: duration,
  retryOn: str,
  retryRemoteLocalities: bool,
  retryIgnorePreviousHosts: bool,
  backoff: duration,
});

const meshConfig: Schema = {
  type: 'object',
  properties: {
    accessLogFile: str,
    accessLogEncoding: oneOfValues('TEXT', 'JSON'),
    accessLogFormat: str,
    enableTracing: bool,
    enableAutoMtls: bool,
    trustDomain: str,
    trustDomainAliases: strList,
    rootNamespace: str,
    connectTimeout: duration,
    protocolDetectionTimeout: duration,
    dnsRefreshRate: duration,
    outboundTrafficPolicy: obj({ mode: oneOfValues('ALLOW_ANY', 'REGISTRY_ONLY', 'ALLOW_ANY_DYNAMIC_DNS') }),
    defaultHttpRetryPolicy: retryPolicy,
    defaultConfig: openMap,
    extensionProviders: list({ type: 'object', properties: { name: str }, required: ['name'] }),
    defaultProviders: obj({ metrics: strList, tracing: strList, accessLogging: strList }),
  },
  additionalProperties: true,
};

export const istioOperatorSpec: Schema = obj({
  profile: str,
  installPackagePath: str,
  hub: str,
  tag: { type: ['string', 'number'] },
  namespace: str,
  revision: str,
  compatibilityVersion: { type: 'string', pattern: '^[0-9]+\\.[0-9]+$' },
  meshConfig,
  components: obj({
    base: component,
    pilot: component,
    cni: component,
    ztunnel: component,
    istiodRemote: component,
    ingressGateways: list(gatewayComponent),
    egressGateways: list(gatewayComponent),
  }),
  values: openMap,
  unvalidatedValues: openMap,
});
