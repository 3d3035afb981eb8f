import type { PeerCertificate } from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import type { CertificateInfo, HelloMessage } from './protocol.js';

/** What an authenticator sees for one new discovery stream. */
export interface AuthContext {
  hello: HelloMessage;
  /** The verified mTLS client certificate (chain checked by TLS against the configured CA), if any. */
  peerCertificate: CertificateInfo | null;
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
}

export type AuthResult = { ok: true } | { ok: false; reason: string };
export type Authenticator = (ctx: AuthContext) => AuthResult | Promise<AuthResult>;

/** SPIFFE id of a workload: `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Reduces node's peer certificate to the fields discovery records (never key material). */
export function certificateInfo(cert: PeerCertificate | undefined | null): CertificateInfo | null {
  if (!cert || !cert.serialNumber) return null;
  const uris = (cert.subjectaltname ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  const issuer = cert.issuer ? Object.entries(cert.issuer).map(([k, v]) => `${k}=${String(v)}`).join(',') : undefined;
  const cluster = clusterOfSubject(cert.subject);
  return {
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.valid_from).toISOString(),
    notAfter: new Date(cert.valid_to).toISOString(),
    spiffeId: uris.find((u) => u.startsWith('spiffe://')),
    issuer,
    ...(cluster ? { cluster } : {}),
  };
}

/**
 * The mesh CA binds a workload certificate to the join token's cluster with one subject OU. Several
 * OUs are not a binding the mesh CA writes: none is trusted (the certificate counts as unbound).
 */
function clusterOfSubject(subject: PeerCertificate['subject'] | undefined): string | undefined {
  const ou = (subject as Record<string, string | string[] | undefined> | undefined)?.OU;
  return typeof ou === 'string' && ou.length > 0 ? ou : undefined;
}

export interface SpiffeAuthenticatorOptions {
  /**
   * Refuse certificates that carry no cluster binding. The operator sets it: its mesh CA binds every
   * certificate it issues, so an unbound one could claim any cluster. Off by default for PKIs that
   * do not bind clusters (a certificate that does carry a cluster is always checked).
   */
  requireClusterBinding?: boolean;
}

/**
 * Identity comes from the certificate, never from what the proxy claims (STYLE §18): the hello's
 * namespace and service account must match the SPIFFE id of its verified client certificate, and
 * its cluster the cluster the certificate is bound to.
 */
export function spiffeAuthenticator(trustDomain: string, options: SpiffeAuthenticatorOptions = {}): Authenticator {
  return ({ hello, peerCertificate }) => {
    if (!peerCertificate) return { ok: false, reason: 'no client certificate' };
    const want = spiffeId(trustDomain, hello.identity.namespace, hello.identity.serviceAccount);
    if (peerCertificate.spiffeId !== want) {
      return { ok: false, reason: `certificate identity ${peerCertificate.spiffeId ?? '(none)'} does not match ${want}` };
    }
    const bound = peerCertificate.cluster;
    if (bound === undefined && options.requireClusterBinding) {
      return { ok: false, reason: `certificate ${peerCertificate.serialNumber} is bound to no cluster; hello claims ${hello.identity.cluster} (get a new certificate with the cluster's join token)` };
    }
    if (bound !== undefined && bound !== hello.identity.cluster) {
      return { ok: false, reason: `certificate is bound to cluster ${bound}; hello claims ${hello.identity.cluster}` };
    }
    return { ok: true };
  };
}
