import type { MeshObject } from '../../mesh/object.js';
import type { AuthorizationPolicySpec, JWTRule, MtlsMode, PeerAuthenticationSpec, RequestAuthenticationSpec } from '../../mesh/api/index.js';
import type { AuthorizationPolicyRef, InboundPolicy, JwtRuleSnapshot, PeerAuthMode, ProxyIdentity } from '../../mesh/snapshot.js';
import { byString, compact, durationMs, hasLabels, labelsMatch, objectKey } from './common.js';
import type { ClusterIndex } from './cluster-index.js';

export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

function definedMode(mode: MtlsMode | undefined): PeerAuthMode | undefined {
  return mode && mode !== 'UNSET' ? mode : undefined;
}

function selects(selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string>): boolean {
  return hasLabels(selector) && labelsMatch(selector!.matchLabels, labels);
}

/**
 * Istio's best-effort inference of a service's mTLS mode (BestEffortInferServiceMTLSMode), which
 * auto mTLS consults for a cluster without DestinationRule TLS: the namespace policy of the
 * service's namespace (no selector), else the mesh policy; workload policies are not considered.
 * Undefined when nothing sets a mode.
 */
export function inferServiceMtlsMode(index: ClusterIndex, namespace: string): PeerAuthMode | undefined {
  const root = index.mesh.rootNamespace;
  const namespaceWide = (index.peerAuthentications.get(namespace) ?? []).find((p) => !hasLabels(p.spec.selector));
  const meshWide = (index.peerAuthentications.get(root) ?? []).find((p) => !hasLabels(p.spec.selector));
  return definedMode(namespaceWide?.spec.mtls?.mode) ?? definedMode(meshWide?.spec.mtls?.mode);
}

/**
 * PeerAuthentication: the workload policy (selector, proxy's namespace) over the namespace policy
 * over the mesh policy (root namespace, no selector); UNSET inherits; nothing set ⇒ PERMISSIVE.
 * Selector policies in the root namespace do not apply mesh-wide. Port-level modes come from the
 * workload policy; an UNSET port inherits the resolved mode.
 */
export function resolvePeerAuthentication(index: ClusterIndex, proxy: ProxyIdentity): Pick<InboundPolicy, 'mtlsMode' | 'portLevelMtls'> {
  const own = index.peerAuthentications.get(proxy.namespace) ?? [];
  const root = index.mesh.rootNamespace;
  const workload = own.find((p) => selects(p.spec.selector, proxy.labels));
  const namespaceWide = own.find((p) => !hasLabels(p.spec.selector));
  const meshWide = (index.peerAuthentications.get(root) ?? []).find((p) => !hasLabels(p.spec.selector));
  const chain: Array<MeshObject<PeerAuthenticationSpec> | undefined> = [workload, namespaceWide, meshWide];
  let mtlsMode: PeerAuthMode = 'PERMISSIVE';
  for (const policy of chain) {
    const mode = definedMode(policy?.spec.mtls?.mode);
    if (mode) {
      mtlsMode = mode;
      break;
    }
  }
  const portLevelMtls: Record<string, PeerAuthMode> = {};
  for (const [port, setting] of Object.entries(workload?.spec.portLevelMtls ?? {})) {
    portLevelMtls[port] = definedMode(setting?.mode) ?? mtlsMode;
  }
  return { mtlsMode, portLevelMtls };
}

/**
 * Security policies that apply to a proxy: root-namespace policies mesh-wide (with their selector,
 * if any), policies in its namespace without a selector, and those whose selector matches its labels.
 * Policies attached only through targetRefs (waypoints) do not apply to sidecars.
 */
function policiesFor<S extends { selector?: { matchLabels?: Record<string, string> }; targetRef?: unknown; targetRefs?: unknown[] }>(
  byNamespace: Map<string, MeshObject<S>[]>,
  rootNamespace: string,
  proxy: ProxyIdentity,
): MeshObject<S>[] {
  const candidates = [...(byNamespace.get(rootNamespace) ?? [])];
  if (proxy.namespace !== rootNamespace) candidates.push(...(byNamespace.get(proxy.namespace) ?? []));
  return candidates
    .filter((p) => {
      if (p.spec.targetRef || (p.spec.targetRefs && p.spec.targetRefs.length > 0)) return false;
      return !hasLabels(p.spec.selector) || labelsMatch(p.spec.selector!.matchLabels, proxy.labels);
    })
    .sort((a, b) => byString(objectKey(a), objectKey(b)));
}

// Istio evaluates CUSTOM, then DENY, then ALLOW; AUDIT only marks requests.
const ACTION_ORDER: Record<AuthorizationPolicyRef['action'], number> = { CUSTOM: 0, DENY: 1, ALLOW: 2, AUDIT: 3 };

function translateAuthorizationPolicy(policy: MeshObject<AuthorizationPolicySpec>): AuthorizationPolicyRef {
  const action = policy.spec.action ?? 'ALLOW';
  return compact({
    name: objectKey(policy),
    action,
    provider: action === 'CUSTOM' ? policy.spec.provider?.name : undefined,
    rules: policy.spec.rules ? structuredClone(policy.spec.rules) : undefined,
    dryRun: policy.metadata.annotations?.[DRY_RUN_ANNOTATION] === 'true' ? true : undefined,
  });
}

/** Istio's default token locations apply only when a rule names none. */
function translateJwtRule(policy: string, rule: JWTRule): JwtRuleSnapshot {
  const named = (rule.fromHeaders?.length ?? 0) + (rule.fromParams?.length ?? 0) + (rule.fromCookies?.length ?? 0) > 0;
  return compact({
    policy,
    issuer: rule.issuer,
    audiences: [...(rule.audiences ?? [])],
    jwks: rule.jwks,
    jwksUri: rule.jwksUri,
    fromHeaders: named
      ? (rule.fromHeaders ?? []).map((h) => compact({ name: h.name, prefix: h.prefix }))
      : [{ name: 'Authorization', prefix: 'Bearer ' }],
    fromParams: named ? [...(rule.fromParams ?? [])] : ['access_token'],
    fromCookies: [...(rule.fromCookies ?? [])],
    forwardOriginalToken: rule.forwardOriginalToken ?? false,
    outputPayloadToHeader: rule.outputPayloadToHeader,
    outputClaimToHeaders: (rule.outputClaimToHeaders ?? []).map((c) => ({ header: c.header, claim: c.claim })),
    timeoutMs: durationMs(rule.timeout) ?? DEFAULT_JWKS_TIMEOUT_MS,
  });
}

export function buildInboundPolicy(index: ClusterIndex, proxy: ProxyIdentity): InboundPolicy {
  const root = index.mesh.rootNamespace;
  const authorization = policiesFor<AuthorizationPolicySpec>(index.authorizationPolicies, root, proxy)
    .map(translateAuthorizationPolicy)
    .sort((a, b) => ACTION_ORDER[a.action] - ACTION_ORDER[b.action] || byString(a.name, b.name));
  const jwtRules = policiesFor<RequestAuthenticationSpec>(index.requestAuthentications, root, proxy).flatMap((p) =>
    (p.spec.jwtRules ?? []).map((rule) => translateJwtRule(objectKey(p), rule)),
  );
  return { ...resolvePeerAuthentication(index, proxy), authorization, jwtRules };
}
