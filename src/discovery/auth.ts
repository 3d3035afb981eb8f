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
  return {
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.valid_from).toISOString(),
    notAfter: new Date(cert.valid_to).toISOString(),
    spiffeId: uris.find((u) => u.startsWith('spiffe://')),
    issuer,
  };
}

/**
 * Identity comes from the certificate, never from what the proxy claims (STYLE §18): the hello's
 * namespace and service account must match the SPIFFE id of its verified client certificate.
 */
export function spiffeAuthenticator(trustDomain: string): Authenticator {
  return ({ hello, peerCertificate }) => {
    if (!peerCertificate) return { ok: false, reason: 'no client certificate' };
    const want = spiffeId(trustDomain, hello.identity.namespace, hello.identity.serviceAccount);
    if (peerCertificate.spiffeId !== want) {
      return { ok: false, reason: `certificate identity ${peerCertificate.spiffeId ?? '(none)'} does not match ${want}` };
    }
    return { ok: true };
  };
}
