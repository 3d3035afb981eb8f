import type { IncomingMessage } from 'node:http';
import type { ConnectionOptions, SecureContextOptions, TLSSocket } from 'node:tls';
import type { Endpoint, ProxySnapshot, UpstreamCluster } from '../mesh/snapshot.js';
import { authorizeRequest } from './authz/authorize.js';
import type { ExtAuthzOptions } from './authz/ext-authz.js';
import type { AuthzRequest } from './authz/types.js';
import { principalOf, spiffeId, spiffeIdFromSubjectAltName } from './identity.js';
import { RequestAuthenticator } from './jwt/authenticate.js';
import type { CertificateStore, WorkloadCertificate } from './tls/certificate-store.js';
import { compileClientTls } from './tls/client-tls.js';
import { modeForPort } from './tls/mesh-listener.js';

/*
 * Adapters shaped like src/proxy/extensions.ts (ProxyTlsProvider, InboundFilter), declared here
 * structurally because src/security must not import src/proxy.
 */

export type ServerTlsOptions = SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };

export interface SecurityTlsProvider {
  /** Inbound mTLS credentials; the SAME object until the certificate rotates (compare by identity). */
  serverContext(): ServerTlsOptions;
  /**
   * Client TLS options for a NEW connection toward `cluster` (and `endpoint`, for auto mTLS):
   * cluster.tls when set (ISTIO_MUTUAL / SIMPLE / MUTUAL; DISABLE ⇒ undefined); else, with auto mTLS
   * on, ISTIO_MUTUAL toward endpoints whose tlsMode is `istio`, expecting their service account.
   */
  clientContext(cluster: UpstreamCluster, endpoint?: Endpoint): (ConnectionOptions & Record<string, unknown>) | undefined;
}

export interface TlsProviderOptions {
  /** Mesh trust domain, for auto-mTLS secure naming (defaults to the workload certificate's). */
  trustDomain?: string;
  /** MeshConfig enableAutoMtls (default true). */
  enableAutoMtls?: boolean;
}

/** ProxyTlsProvider backed by a CertificateStore; rotation reaches new connections on both sides. */
export function createTlsProvider(store: CertificateStore, options: TlsProviderOptions = {}): SecurityTlsProvider {
  let serverFor: { cert: WorkloadCertificate; options: ServerTlsOptions } | undefined;
  const compiled = new WeakMap<UpstreamCluster, ReturnType<typeof compileClientTls> | null>();
  const auto = compileClientTls('AUTO', store);
  const trustDomain = () =>
    options.trustDomain ?? (store.current.spiffeId ? principalOf(store.current.spiffeId).split('/')[0] : 'cluster.local');
  return {
    serverContext() {
      const cert = store.current;
      if (serverFor?.cert !== cert) {
        serverFor = {
          cert,
          options: { key: cert.privateKeyPem, cert: cert.certChainPem, ca: cert.rootCertPem, requestCert: true, rejectUnauthorized: true },
        };
      }
      return serverFor.options;
    },
    clientContext(cluster, endpoint) {
      if (cluster.tls) {
        let factory = compiled.get(cluster);
        if (factory === undefined) {
          factory = compileClientTls(cluster.tls, store) ?? null;
          compiled.set(cluster, factory);
        }
        return factory ? (factory() as ConnectionOptions & Record<string, unknown>) : undefined;
      }
      if (options.enableAutoMtls === false || endpoint?.tlsMode !== 'istio') return undefined;
      const expected =
        endpoint.serviceAccount && endpoint.namespace
          ? compileClientTls('AUTO', store, {
              subjectAltNames: [spiffeId({ trustDomain: trustDomain(), namespace: endpoint.namespace, serviceAccount: endpoint.serviceAccount })],
            })
          : auto;
      return expected!() as ConnectionOptions & Record<string, unknown>;
    },
  };
}

/** Same shape as src/proxy's InboundContext, plus an optional header map to edit. */
export interface InboundFilterContext {
  snapshot: Pick<ProxySnapshot, 'inbound' | 'mesh'>;
  port: number;
  remoteAddress: string | undefined;
  tls: boolean;
  peerCertificate?: { raw?: Buffer; subjectaltname?: string } | undefined;
  /**
   * The header map the proxy will forward. JWT output headers, token removal and ext-authz
   * headersToUpstreamOnAllow are applied here; when absent, to `req.headers`.
   */
  headers?: Record<string, string | string[] | undefined>;
  /** Original client address (X-Forwarded-For with trusted hops), for remote.ip; default remoteAddress. */
  remoteIp?: string;
}

export interface InboundDenial {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** What the filter learned about an allowed request (telemetry: source/request principals). */
export interface InboundIdentity {
  sourcePrincipal?: string;
  requestPrincipal?: string;
  connectionSecurityPolicy: 'mutual_tls' | 'none';
}

const identities = new WeakMap<IncomingMessage, InboundIdentity>();

/** The identities the inbound filter established for `req` (undefined before the filter ran). */
export function inboundIdentityOf(req: IncomingMessage): InboundIdentity | undefined {
  return identities.get(req);
}

export interface InboundFilterOptions {
  authenticator?: RequestAuthenticator;
  extAuthz?: ExtAuthzOptions;
}

/**
 * The sidecar's inbound security step, in Istio's filter order: PeerAuthentication STRICT (a
 * plaintext request on a STRICT port is refused), RequestAuthentication (invalid JWT ⇒ 401), then
 * AuthorizationPolicy (CUSTOM ext-authz, DENY, ALLOW ⇒ 403 `RBAC: access denied`). null = allow.
 */
export function createInboundFilter(
  options: InboundFilterOptions = {},
): (req: IncomingMessage, ctx: InboundFilterContext) => Promise<InboundDenial | null> {
  const authenticator = options.authenticator ?? new RequestAuthenticator();
  return async (req, ctx) => {
    const { inbound, mesh } = ctx.snapshot;
    const mode = modeForPort(inbound.mtlsMode, inbound.portLevelMtls)(ctx.port);
    if (mode === 'STRICT' && !ctx.tls) {
      return { status: 403, body: 'RBAC: access denied', headers: { connection: 'close' } };
    }
    const spiffe = ctx.tls ? spiffeIdFromSubjectAltName(ctx.peerCertificate?.subjectaltname) : undefined;
    const sourcePrincipal = spiffe ? principalOf(spiffe) : undefined;
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
    const headers = ctx.headers ?? (req.headers as Record<string, string | string[] | undefined>);

    const authn = await authenticator.authenticate(inbound.jwtRules, { headers: req.headers, query });
    if (!authn.ok) return { status: authn.status, body: authn.message, headers: { 'www-authenticate': authn.wwwAuthenticate } };

    const socket = req.socket as TLSSocket;
    const authzRequest: AuthzRequest = {
      method: req.method,
      path: url,
      host: req.headers.host,
      headers: req.headers as AuthzRequest['headers'],
      port: ctx.port,
      destinationIp: socket.localAddress,
      sourceIp: ctx.remoteAddress,
      remoteIp: ctx.remoteIp ?? ctx.remoteAddress,
      sourcePrincipal,
      requestPrincipal: authn.principal,
      claims: authn.claims as Record<string, unknown> | undefined,
      sni: ctx.tls && typeof socket.servername === 'string' ? socket.servername : undefined,
    };
    const outcome = await authorizeRequest(inbound.authorization, authzRequest, mesh.extensionProviders, options.extAuthz);
    if (!outcome.allowed) return { status: outcome.status, body: outcome.body, headers: outcome.headers };

    for (const name of authn.headersToRemove) delete headers[name];
    Object.assign(headers, authn.headersToSet, outcome.headersToUpstream);
    identities.set(req, { sourcePrincipal, requestPrincipal: authn.principal, connectionSecurityPolicy: ctx.tls && spiffe ? 'mutual_tls' : 'none' });
    return null;
  };
}
