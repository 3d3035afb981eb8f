/** What the data plane knows about one request (or TCP connection) when it authorises it. */
export interface AuthzRequest {
  /** `http` (default) or `tcp`: for TCP, HTTP-only fields make ALLOW rules never match and are ignored in DENY rules (Istio). */
  protocol?: 'http' | 'tcp';
  method?: string;
  /** Request path; a query string, if present, is ignored for matching. */
  path?: string;
  /** Host / :authority as received. */
  host?: string;
  /** Lower-case header names, as node's IncomingMessage.headers. */
  headers?: Record<string, string | string[] | undefined>;
  /** Destination (local) port. */
  port: number;
  destinationIp?: string;
  /** Direct downstream peer address (`source.ip`, `ipBlocks`). */
  sourceIp?: string;
  /** Original client address, e.g. from X-Forwarded-For (`remote.ip`, `remoteIpBlocks`); defaults to sourceIp. */
  remoteIp?: string;
  /** mTLS peer principal without `spiffe://` (`cluster.local/ns/default/sa/x`). */
  sourcePrincipal?: string;
  /** Defaults to the namespace in sourcePrincipal. */
  sourceNamespace?: string;
  /** `<iss>/<sub>` of the validated JWT (authenticateRequest's principal). */
  requestPrincipal?: string;
  /** Validated JWT claims. */
  claims?: Record<string, unknown>;
  /** TLS SNI of the downstream connection (`connection.sni`). */
  sni?: string;
}

export interface AuthzDecision {
  allowed: boolean;
  /** Human-readable cause: for logs and access-log response details. */
  reason: string;
  /** `<namespace>/<name>` of the deciding policy, when one decided. */
  policy?: string;
  /**
   * Set when a CUSTOM policy matched: the request must also pass this ext-authz provider
   * (checkExternalAuthz). The provider runs first (Envoy filter order: ext_authz before RBAC), so
   * its denial, with its own status, wins; if it allows, `allowed` decides.
   */
  customProvider?: string;
  /** AUDIT policies that matched (they never change the decision). */
  audited?: string[];
  /** Decision the `istio.io/dry-run` policies would have made, when there are any. */
  dryRun?: { allowed: boolean; policy?: string };
}

/** The body and status a denied request gets (Envoy RBAC filter). */
export const RBAC_DENIED_STATUS = 403;
export const RBAC_DENIED_BODY = 'RBAC: access denied';
