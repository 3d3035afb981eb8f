import type { MtlsMode, PeerAuthenticationSpec } from '../mesh/api/security.js';
import type { PeerAuthMode } from '../mesh/snapshot.js';

export interface PeerAuthenticationPolicy {
  namespace: string;
  name: string;
  spec: PeerAuthenticationSpec;
  /** Istio picks the oldest when several policies apply at one level; absent ⇒ order by name. */
  creationTimestamp?: string;
}

export interface PeerAuthenticationInput {
  rootNamespace: string;
  namespace: string;
  labels: Record<string, string>;
  policies: PeerAuthenticationPolicy[];
}

export interface ResolvedPeerAuthentication {
  mtlsMode: PeerAuthMode;
  portLevelMtls: Record<string, PeerAuthMode>;
  /** `<namespace>/<name>` of the policies that contributed, most specific first. */
  from: string[];
}

function selects(spec: PeerAuthenticationSpec, labels: Record<string, string>): boolean {
  const wanted = spec.selector?.matchLabels ?? {};
  return Object.entries(wanted).every(([key, value]) => labels[key] === value);
}

function hasSelector(spec: PeerAuthenticationSpec): boolean {
  return Object.keys(spec.selector?.matchLabels ?? {}).length > 0;
}

function oldest(policies: PeerAuthenticationPolicy[]): PeerAuthenticationPolicy | undefined {
  return [...policies].sort(
    (a, b) => (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '') || a.name.localeCompare(b.name),
  )[0];
}

function setMode(mode: MtlsMode | undefined): PeerAuthMode | undefined {
  return mode === undefined || mode === 'UNSET' ? undefined : mode;
}

/**
 * PeerAuthentication precedence (ISTIO-SEMANTICS §1.5), pure: workload (selector, in the workload's
 * namespace) > namespace (no selector) > mesh (root namespace, no selector; selector policies in the
 * root namespace are ignored); UNSET inherits; nothing set ⇒ PERMISSIVE. portLevelMtls comes from
 * the workload-level policy only; an UNSET port inherits the resolved workload mode.
 */
export function resolvePeerAuthentication(input: PeerAuthenticationInput): ResolvedPeerAuthentication {
  const inNamespace = input.policies.filter((p) => p.namespace === input.namespace);
  const workload =
    input.namespace === input.rootNamespace
      ? undefined
      : oldest(inNamespace.filter((p) => hasSelector(p.spec) && selects(p.spec, input.labels)));
  const namespace = input.namespace === input.rootNamespace ? undefined : oldest(inNamespace.filter((p) => !hasSelector(p.spec)));
  const mesh = oldest(input.policies.filter((p) => p.namespace === input.rootNamespace && !hasSelector(p.spec)));
  const chain = [workload, namespace, mesh].filter((p): p is PeerAuthenticationPolicy => p !== undefined);
  let mtlsMode: PeerAuthMode = 'PERMISSIVE';
  for (const policy of chain) {
    const mode = setMode(policy.spec.mtls?.mode);
    if (mode) {
      mtlsMode = mode;
      break;
    }
  }
  const portLevelMtls: Record<string, PeerAuthMode> = {};
  for (const [port, setting] of Object.entries(workload?.spec.portLevelMtls ?? {})) {
    portLevelMtls[port] = setMode(setting.mode) ?? mtlsMode;
  }
  return { mtlsMode, portLevelMtls, from: chain.map((p) => `${p.namespace}/${p.name}`) };
}
