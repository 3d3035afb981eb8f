/**
 * The proxy snapshot: everything one proxy needs to serve traffic, rendered by the operator
 * (src/render) and applied by the proxy (src/proxy). It is plain JSON: durations are resolved to
 * milliseconds, defaults are filled in, and every list has a stable order, so equal content
 * serialises equally and `version` (a content hash) changes only when content does.
 *
 * Resources are named (routeConfigs, clusters, endpoints, listeners) so discovery can push deltas:
 * each named resource has its own hash.
 *
 * This file is the contract between the control plane and the data plane; src/mesh/snapshot-schema.ts
 * holds its JSON schema, which the proxy validates every snapshot against before applying it.
 */
export const SNAPSHOT_FORMAT = 'trellis.dev/snapshot/v1';

export type ProxyMode = 'sidecar' | 'gateway';

export interface ProxyIdentity {
  /** Stable id, `<cluster>/<namespace>/<workload>/<instance>`. */
  id: string;
  cluster: string;
  namespace: string;
  workload: string;
  labels: Record<string, string>;
  /** Short service name (`reviews`) this workload backs, if any. */
  service?: string;
  serviceAccount: string;
  mode: ProxyMode;
}

export interface ProxySnapshot {
  format: typeof SNAPSHOT_FORMAT;
  /** sha256 over the canonical JSON of everything below except `version` (hex, 16 chars). */
  version: string;
  /** Mesh version this snapshot was rendered for (the IstioOperator spec.tag / versions/<v> folder). */
  meshVersion: string;
  proxy: ProxyIdentity;
  mesh: MeshSettings;
  /** Sidecar: one route config named `outbound`; gateway: one per server port, named `http.<port>`. */
  routeConfigs: RouteConfig[];
  clusters: UpstreamCluster[];
  endpoints: ClusterLoadAssignment[];
  /** Gateway listeners (empty for sidecars, whose listeners come from the command line). */
  listeners: GatewayListener[];
  inbound: InboundPolicy;
  telemetry: TelemetrySettings;
}

export interface MeshSettings {
  trustDomain: string;
  rootNamespace: string;
  enableAutoMtls: boolean;
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  connectTimeoutMs: number;
  /** Retry policy for routes whose VirtualService has no `retries` (Istio's default or meshConfig.defaultHttpRetryPolicy). */
  defaultRetry: RetryPolicy;
  extensionProviders: ExtensionProvider[];
}

export interface ExtensionProvider {
  name: string;
  /** Only HTTP ext-authz providers are served by Trellis. */
  envoyExtAuthzHttp?: {
    service: string;
    port: number;
    pathPrefix?: string;
    timeoutMs?: number;
    includeRequestHeadersInCheck?: string[];
    headersToUpstreamOnAllow?: string[];
    headersToDownstreamOnDeny?: string[];
    failOpen?: boolean;
  };
}

// ---------------------------------------------------------------- routes

export interface RouteConfig {
  name: string;
  virtualHosts: VirtualHost[];
}

export interface VirtualHost {
  name: string;
  /** Exact hosts (`reviews`, `reviews.default`, `reviews.default.svc.cluster.local`, with and without `:port`), or `*.suffix`, or `*`. */
  domains: string[];
  routes: Route[];
}

export type StringMatcher =
  | { exact: string }
  | { prefix: string }
  | { regex: string }
  /** Header present with any value (Istio `{}`). */
  | { present: true };

export interface RouteMatch {
  uri?: StringMatcher;
  /** Applies to exact and prefix URI matches only. */
  ignoreUriCase?: boolean;
  scheme?: StringMatcher;
  method?: StringMatcher;
  authority?: StringMatcher;
  headers?: Record<string, StringMatcher>;
  withoutHeaders?: Record<string, StringMatcher>;
  queryParams?: Record<string, StringMatcher>;
  port?: number;
  /** Istio match name, carried to access logs. */
  name?: string;
}

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface RouteDestination {
  /** Name of an UpstreamCluster in this snapshot. */
  cluster: string;
  /** Relative weight; share = weight / sum(weights). */
  weight: number;
  requestHeaders?: HeaderOps;
  responseHeaders?: HeaderOps;
}

export interface RetryPolicy {
  /** Number of retries (max requests = 1 + attempts); 0 disables. */
  attempts: number;
  perTryTimeoutMs?: number;
  /** Envoy tokens, e.g. `5xx`, `gateway-error`, `reset`, `connect-failure`, `retriable-4xx`, `refused-stream`, `retriable-status-codes`. */
  retryOn: string[];
  /** Bare status codes from retryOn (they imply `retriable-status-codes`). */
  retriableStatusCodes: number[];
  /** Exponential backoff base, default 25 ms, with jitter; max 10x base. */
  backoffBaseMs: number;
}

export interface FaultPolicy {
  delay?: { fixedDelayMs: number; percent: number };
  abort?: { httpStatus: number; percent: number };
}

export interface CorsPolicy {
  allowOrigins: StringMatcher[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
  unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

export interface RedirectAction {
  uri?: string;
  prefixRewrite?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  /** Default 301. */
  code: number;
}

export type RouteAction =
  | { kind: 'route'; destinations: RouteDestination[] }
  | { kind: 'redirect'; redirect: RedirectAction }
  | { kind: 'directResponse'; status: number; body?: string };

export interface Route {
  /** `<namespace>/<virtualservice>/<route name or index>`, or `default` for generated routes. */
  name: string;
  /** OR across entries, AND within one; empty = match everything. */
  match: RouteMatch[];
  action: RouteAction;
  rewrite?: { uri?: string; uriRegex?: { match: string; rewrite: string }; authority?: string };
  /** Absent = no timeout (Istio's default). */
  timeoutMs?: number;
  /** Always resolved: the VS policy, or the mesh default when the VS has none; attempts 0 = disabled. */
  retry: RetryPolicy;
  fault?: FaultPolicy;
  mirrors: Array<{ cluster: string; percent: number }>;
  requestHeaders?: HeaderOps;
  responseHeaders?: HeaderOps;
  cors?: CorsPolicy;
}

// ---------------------------------------------------------------- clusters and endpoints

export type LoadBalancer =
  | { simple: 'LEAST_REQUEST' | 'ROUND_ROBIN' | 'RANDOM' | 'PASSTHROUGH' }
  | {
      consistentHash: {
        httpHeaderName?: string;
        httpCookie?: { name: string; path?: string; ttlMs?: number };
        useSourceIp?: boolean;
        httpQueryParameterName?: string;
        minimumRingSize: number;
      };
    };

export interface ConnectionPool {
  maxConnections: number;
  connectTimeoutMs: number;
  http1MaxPendingRequests: number;
  http2MaxRequests: number;
  /** 0 = unlimited; 1 disables keep-alive. */
  maxRequestsPerConnection: number;
  maxRetries: number;
  /** 0 disables the idle timeout. */
  idleTimeoutMs: number;
}

export interface OutlierDetectionPolicy {
  consecutive5xxErrors: number;
  consecutiveGatewayErrors: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  minHealthPercent: number;
}

export interface UpstreamTls {
  mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  sni?: string;
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  /** SPIFFE ids (ISTIO_MUTUAL: the service's accounts, for secure naming) or DNS names the server must present. */
  subjectAltNames: string[];
  insecureSkipVerify?: boolean;
}

export interface UpstreamCluster {
  /** Istio-style name: `outbound|<port>|<subset>|<fqdn>`; `PassthroughCluster`, `BlackHoleCluster`. */
  name: string;
  /** FQDN of the service, e.g. `reviews.default.svc.cluster.local`. */
  service: string;
  port: number;
  subset?: string;
  lb: LoadBalancer;
  connectionPool: ConnectionPool;
  outlierDetection?: OutlierDetectionPolicy;
  /** Absent with auto mTLS: the proxy uses ISTIO_MUTUAL toward endpoints with tlsMode `istio`. */
  tls?: UpstreamTls;
}

export interface Endpoint {
  address: string;
  port: number;
  labels: Record<string, string>;
  /** `istio` when the endpoint has a Trellis sidecar that accepts mTLS; else `disabled`. */
  tlsMode: 'istio' | 'disabled';
  serviceAccount?: string;
  weight: number;
  workload?: string;
  namespace?: string;
}

export interface ClusterLoadAssignment {
  cluster: string;
  endpoints: Endpoint[];
}

// ---------------------------------------------------------------- gateway listeners

export interface GatewayListener {
  /** `<address>_<port>`. */
  name: string;
  port: number;
  bind?: string;
  protocol: 'HTTP' | 'HTTPS' | 'HTTP2' | 'TLS' | 'TCP';
  /** Hosts from the Gateway servers on this port. */
  hosts: string[];
  tls?: {
    mode: 'SIMPLE' | 'MUTUAL' | 'PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL' | 'AUTO_PASSTHROUGH';
    serverCertificate?: string;
    privateKey?: string;
    caCertificates?: string;
    credentialName?: string;
    minProtocolVersion?: string;
  };
  httpsRedirect?: boolean;
  routeConfig: string;
}

// ---------------------------------------------------------------- inbound security

export type PeerAuthMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface InboundPolicy {
  /** Resolved mode (workload > namespace > mesh; UNSET inherits; default PERMISSIVE). */
  mtlsMode: PeerAuthMode;
  portLevelMtls: Record<string, PeerAuthMode>;
  /** Policies selecting this proxy, in Istio evaluation groups; names are `<namespace>/<name>`. */
  authorization: AuthorizationPolicyRef[];
  jwtRules: JwtRuleSnapshot[];
}

export interface AuthorizationPolicyRef {
  name: string;
  action: 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';
  provider?: string;
  /** Absent = the policy has no rules (ALLOW: matches nothing ⇒ deny-all). Same shape as Istio's rules. */
  rules?: import('./api/security.js').AuthzRule[];
  dryRun?: boolean;
}

export interface JwtRuleSnapshot {
  policy: string;
  issuer: string;
  audiences: string[];
  jwks?: string;
  jwksUri?: string;
  fromHeaders: Array<{ name: string; prefix?: string }>;
  fromParams: string[];
  fromCookies: string[];
  forwardOriginalToken: boolean;
  outputPayloadToHeader?: string;
  outputClaimToHeaders: Array<{ header: string; claim: string }>;
  timeoutMs: number;
}

export interface TelemetrySettings {
  accessLog: boolean;
  accessLogEncoding: 'TEXT' | 'JSON';
  metrics: boolean;
  tracingSamplingPercent: number;
}
