import type { HTTPRetry } from './networking.js';

/** The subset of MeshConfig that Trellis reads; other MeshConfig fields are accepted and carried through. */
export interface MeshConfig {
  accessLogFile?: string;
  accessLogEncoding?: 'TEXT' | 'JSON';
  accessLogFormat?: string;
  enableTracing?: boolean;
  enableAutoMtls?: boolean;
  trustDomain?: string;
  rootNamespace?: string;
  connectTimeout?: string;
  protocolDetectionTimeout?: string;
  outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' | 'ALLOW_ANY_DYNAMIC_DNS' };
  defaultHttpRetryPolicy?: HTTPRetry;
  defaultConfig?: Record<string, unknown>;
  extensionProviders?: Array<{ name: string; [provider: string]: unknown }>;
  defaultProviders?: { metrics?: string[]; tracing?: string[]; accessLogging?: string[] };
  [field: string]: unknown;
}

/** install.istio.io/v1alpha1 IstioOperator, as istioctl reads it (no CRD is served). */
export interface IstioOperatorSpec {
  profile?: string;
  revision?: string;
  hub?: string;
  tag?: string | number;
  namespace?: string;
  meshConfig?: MeshConfig;
  components?: Record<string, unknown>;
  values?: Record<string, unknown>;
  unvalidatedValues?: Record<string, unknown>;
  installPackagePath?: string;
  compatibilityVersion?: string;
}
