import type { AuthorizationPolicyRef, ExtensionProvider } from '../../mesh/snapshot.js';
import { checkExternalAuthz, EXT_AUTHZ_ERROR_STATUS, type ExtAuthzOptions } from './ext-authz.js';
import { evaluateAuthorization, type CompiledAuthorization } from './evaluate.js';
import { RBAC_DENIED_BODY, RBAC_DENIED_STATUS, type AuthzDecision, type AuthzRequest } from './types.js';

export type AuthorizationOutcome =
  | { allowed: true; decision: AuthzDecision; headersToUpstream: Record<string, string> }
  | { allowed: false; decision: AuthzDecision; status: number; body: string; headers: Record<string, string> };

/**
 * The whole inbound authorization step: when a CUSTOM policy matches, the ext-authz provider named
 * in meshConfig.extensionProviders first; then DENY and ALLOW policies (evaluateAuthorization).
 * Denials by DENY/ALLOW policies are 403 `RBAC: access denied`; provider denials carry its answer.
 */
export async function authorizeRequest(
  policies: AuthorizationPolicyRef[] | CompiledAuthorization,
  req: AuthzRequest,
  providers: ExtensionProvider[],
  options?: ExtAuthzOptions,
): Promise<AuthorizationOutcome> {
  const decision = evaluateAuthorization(policies, req);
  const rbacDenied = (): AuthorizationOutcome => ({
    allowed: false,
    decision,
    status: RBAC_DENIED_STATUS,
    body: RBAC_DENIED_BODY,
    headers: {},
  });
  if (decision.customProvider === undefined) {
    return decision.allowed ? { allowed: true, decision, headersToUpstream: {} } : rbacDenied();
  }
  const provider = providers.find((candidate) => candidate.name === decision.customProvider);
  if (!provider) {
    // Istio rejects such a policy; the data plane fails closed.
    decision.reason = `${decision.reason}; provider ${decision.customProvider} is not in meshConfig.extensionProviders`;
    return { allowed: false, decision: { ...decision, allowed: false }, status: EXT_AUTHZ_ERROR_STATUS, body: RBAC_DENIED_BODY, headers: {} };
  }
  // ext_authz runs before RBAC in Istio's filter chain: its denial (and status) comes first.
  const result = await checkExternalAuthz(
    provider,
    { method: req.method ?? 'GET', path: req.path ?? '/', host: req.host, headers: req.headers ?? {} },
    options,
  );
  decision.reason = `${decision.reason}; ${result.reason}`;
  if (!result.allowed) {
    return { allowed: false, decision: { ...decision, allowed: false }, status: result.status, body: result.body, headers: result.headersToDownstream };
  }
  return decision.allowed ? { allowed: true, decision, headersToUpstream: result.headersToUpstream } : rbacDenied();
}
