/** SPIFFE identities as Istio writes them: `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

const SPIFFE_PREFIX = 'spiffe://';
/** DNS-label-ish segments; trust domains may contain dots. Keeps SAN injection (`,`, `/`) out. */
const TRUST_DOMAIN_RE = /^[a-z0-9]([a-z0-9.\-_]{0,251}[a-z0-9])?$/i;
const SEGMENT_RE = /^[a-z0-9]([a-z0-9.\-_]{0,251}[a-z0-9])?$/i;
/** A cluster name: one DNS label (it becomes a token file name and a certificate's subject OU). */
export const CLUSTER_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isValidIdentity(id: WorkloadIdentity): boolean {
  return TRUST_DOMAIN_RE.test(id.trustDomain) && SEGMENT_RE.test(id.namespace) && SEGMENT_RE.test(id.serviceAccount);
}

export function spiffeId(id: WorkloadIdentity): string {
  return `${SPIFFE_PREFIX}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Istio's principal: the SPIFFE id without `spiffe://` (`cluster.local/ns/default/sa/bookinfo`). */
export function principalOf(spiffe: string): string {
  return spiffe.startsWith(SPIFFE_PREFIX) ? spiffe.slice(SPIFFE_PREFIX.length) : spiffe;
}

/** Parses a SPIFFE id or a principal; undefined when it is not of the Istio shape. */
export function parseSpiffeId(value: string): WorkloadIdentity | undefined {
  const principal = principalOf(value);
  const match = /^([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  if (!match) return undefined;
  return { trustDomain: match[1], namespace: match[2], serviceAccount: match[3] };
}

/** Normalises a SAN expectation (`spiffe://…` or bare principal) to the full SPIFFE URI. */
export function toSpiffeUri(value: string): string {
  return value.startsWith(SPIFFE_PREFIX) ? value : `${SPIFFE_PREFIX}${value}`;
}

/** URI SANs from a Node `subjectaltname` string (`URI:spiffe://…, DNS:foo`). */
export function uriSansOf(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  return subjectaltname
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

/** The first SPIFFE URI SAN of a certificate, if any. */
export function spiffeIdFromSubjectAltName(subjectaltname: string | undefined): string | undefined {
  return uriSansOf(subjectaltname).find((uri) => uri.startsWith(SPIFFE_PREFIX));
}
