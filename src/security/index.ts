/** Public API of src/security (CA, join tokens, mTLS, authorization, JWT). Re-exports only. */
export { CaError, isCaError, type CaErrorCode } from './errors.js';
export {
  isValidIdentity,
  parseSpiffeId,
  principalOf,
  spiffeId,
  spiffeIdFromSubjectAltName,
  toSpiffeUri,
  uriSansOf,
  type WorkloadIdentity,
} from './identity.js';
export {
  CertificateAuthority,
  DEFAULT_MAX_WORKLOAD_CERT_TTL_MS,
  DEFAULT_WORKLOAD_CERT_TTL_MS,
  type CertificateAuthorityOptions,
  type IssuedCertificate,
  type IssuedKeyPair,
  type PluginCaFiles,
  type RootKeyType,
  type ServerCertificateRequest,
} from './ca/certificate-authority.js';
export { DEFAULT_WORKLOAD_KEY_TYPE, generateKeyAndCsr, generateWorkloadKey, type KeyAndCsr, type WorkloadKeyType } from './ca/csr.js';
export { splitPemCertificates } from './ca/der-sign.js';
export { JoinTokenStore, caCertHashOf, parseJoinToken, type JoinTokenStoreOptions } from './join-tokens.js';
export { OPERATOR_DNS_NAME, OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, isOperatorIdentity, operatorIdentity } from './operator-identity.js';
export { BOOTSTRAP_PATH, startBootstrapServer, type BootstrapServer, type BootstrapServerOptions } from './bootstrap-server.js';
export { MeshCaService, type MeshCaServiceOptions, type MeshServerTls } from './mesh-ca-service.js';
export {
  bootstrapExchange,
  createBootstrapHandler,
  renewalPeerOf,
  renewWithPeerCertificate,
  toBootstrapResponse,
  type BootstrapRequest,
  type BootstrapResponse,
  type RenewalPeer,
  type RenewalRequest,
} from './bootstrap.js';
export {
  fetchPinnedRoot,
  requestBootstrapCertificate,
  requestRenewedCertificate,
  resolveBootstrapEndpoint,
  type BootstrapClientOptions,
  type RenewalClientOptions,
} from './bootstrap-client.js';
export { requestedUrisOf } from './csr-identity.js';
export {
  resolvePeerAuthentication,
  type PeerAuthenticationInput,
  type PeerAuthenticationPolicy,
  type ResolvedPeerAuthentication,
} from './peer-authentication.js';
export { REDACT_CENSOR, REDACT_PATHS, redactOptions } from './redact.js';
export {
  certificateSummaries,
  CertificateStore,
  renewerFor,
  workloadCertificateFrom,
  type CertificateStoreOptions,
  type CertificateSummary,
  type SignedChain,
  type WorkloadCertificate,
} from './tls/certificate-store.js';
export {
  connectionSecurityPolicy,
  createMeshListener,
  handToServer,
  modeForPort,
  peerSecurityOf,
  type MeshListener,
  type MeshListenerOptions,
  type PeerSecurity,
  type RejectReason,
} from './tls/mesh-listener.js';
export {
  compileClientTls,
  createClientTlsOptions,
  SecureNamingError,
  spiffeIdentityCheck,
  type ClientTlsExtras,
  type UpstreamTlsSetting,
} from './tls/client-tls.js';
export { compileAuthorization, evaluateAuthorization, type CompiledAuthorization } from './authz/evaluate.js';
export { RBAC_DENIED_BODY, RBAC_DENIED_STATUS, type AuthzDecision, type AuthzRequest } from './authz/types.js';
export { checkExternalAuthz, type ExtAuthzCheckRequest, type ExtAuthzOptions, type ExtAuthzResult } from './authz/ext-authz.js';
export { authorizeRequest, type AuthorizationOutcome } from './authz/authorize.js';
export {
  authenticateRequest,
  RequestAuthenticator,
  type AuthnRequest,
  type AuthnResult,
  type RequestAuthenticatorOptions,
} from './jwt/authenticate.js';
export {
  createInboundFilter,
  createTlsProvider,
  inboundIdentityOf,
  type InboundDenial,
  type InboundFilterContext,
  type InboundFilterOptions,
  type InboundIdentity,
  type SecurityTlsProvider,
  type ServerTlsOptions,
  type TlsProviderOptions,
} from './proxy-adapters.js';
