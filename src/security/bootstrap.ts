import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { CertificateAuthority, IssuedCertificate } from './ca/certificate-authority.js';
import { requestedUrisOf } from './csr-identity.js';
import { CaError, isCaError } from './errors.js';
import { parseSpiffeId, spiffeId, spiffeIdFromSubjectAltName } from './identity.js';
import type { JoinTokenStore } from './join-tokens.js';
import { isOperatorIdentity } from './operator-identity.js';

export interface BootstrapRequest {
  cluster: string;
  /** The cluster's join token: the credential. */
  token: string;
  csrPem: string;
  /** Identity the joining proxy runs as; the token authorises any identity within its cluster's trust domain. */
  namespace: string;
  serviceAccount: string;
  ttlMs?: number;
}

/**
 * token + CSR ⇒ certificate chain. Throws CaError: AUTHN (401) for a bad token, 4xx for a bad CSR.
 * The reason is logged (never the token); callers send `error.toWire()`.
 */
export async function bootstrapExchange(
  ca: CertificateAuthority,
  tokens: JoinTokenStore,
  request: BootstrapRequest,
  logger?: Logger,
): Promise<IssuedCertificate> {
  const identity = { trustDomain: ca.trustDomain, namespace: request.namespace, serviceAccount: request.serviceAccount };
  try {
    if (!(await tokens.verify(request.cluster, request.token))) {
      throw new CaError('AUTHN', `join token rejected for cluster ${JSON.stringify(request.cluster)}`);
    }
    if (isOperatorIdentity(identity)) throw new CaError('IDENTITY', `${identity.namespace}/${identity.serviceAccount} is the operator's reserved identity`);
    // The certificate is bound to the token's cluster: discovery refuses a hello claiming another.
    const issued = ca.issueWorkloadCertificate(request.csrPem, identity, request.ttlMs, { cluster: request.cluster });
    logger?.info({ cluster: request.cluster, spiffeId: issued.spiffeId, serial: issued.serialNumber }, 'bootstrap certificate issued');
    return issued;
  } catch (error) {
    if (isCaError(error)) {
      logger?.warn({ cluster: request.cluster, code: error.code, reason: error.reason }, 'bootstrap refused');
      throw error;
    }
    throw error;
  }
}

/**
 * A renewal: no token, only a CSR; the caller is authenticated by the mesh certificate it presents
 * on the TLS connection. `cluster`/`namespace`/`serviceAccount` are optional and, when sent, must be
 * the certificate's own.
 */
export interface RenewalRequest {
  csrPem: string;
  ttlMs?: number;
  cluster?: string;
  namespace?: string;
  serviceAccount?: string;
}

/** The client certificate of a renewal connection, as TLS verified it against the mesh root. */
export interface RenewalPeer {
  /** TLS verified the chain to the mesh root, and its validity dates. */
  authorized: boolean;
  /** OpenSSL's reason when not authorized (`CERT_HAS_EXPIRED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …). */
  authorizationError?: string;
  spiffeId?: string;
  /** The cluster the certificate is bound to (subject OU). */
  cluster?: string;
  serialNumber?: string;
  notAfter?: Date;
}

/**
 * Renewal over mutual TLS: a new certificate for the SAME identity and cluster as the presented,
 * valid mesh certificate, never for what the request or CSR asks. Throws CaError: AUTHN (401) when
 * the certificate is missing, not from this mesh, expired or bound to no cluster (the proxy then
 * falls back to its join token); IDENTITY when the request or CSR names another identity.
 */
export function renewWithPeerCertificate(
  ca: CertificateAuthority,
  peer: RenewalPeer | undefined,
  request: RenewalRequest,
  logger?: Logger,
  now: number = Date.now(),
): IssuedCertificate {
  try {
    if (!peer) throw new CaError('AUTHN', 'renewal without a client certificate');
    if (!peer.authorized) throw new CaError('AUTHN', `client certificate refused: ${peer.authorizationError ?? 'not verified'}`);
    if (peer.notAfter && peer.notAfter.getTime() <= now) throw new CaError('AUTHN', `client certificate expired at ${peer.notAfter.toISOString()}`);
    const identity = peer.spiffeId ? parseSpiffeId(peer.spiffeId) : undefined;
    if (!identity) throw new CaError('AUTHN', `client certificate carries no SPIFFE workload identity (${peer.spiffeId ?? 'none'})`);
    if (isOperatorIdentity(identity)) throw new CaError('IDENTITY', `${identity.namespace}/${identity.serviceAccount} is the operator's reserved identity`);
    if (!peer.cluster) throw new CaError('AUTHN', `certificate ${peer.serialNumber ?? ''} is bound to no cluster: renew with the join token`);
    const own = spiffeId(identity);
    if (request.cluster !== undefined && request.cluster !== peer.cluster) {
      throw new CaError('IDENTITY', `renewal for ${own} of cluster ${peer.cluster} asks for cluster ${request.cluster}`);
    }
    if ((request.namespace !== undefined && request.namespace !== identity.namespace) || (request.serviceAccount !== undefined && request.serviceAccount !== identity.serviceAccount)) {
      throw new CaError('IDENTITY', `renewal for ${own} asks for ${request.namespace ?? identity.namespace}/${request.serviceAccount ?? identity.serviceAccount}`);
    }
    const asked = requestedUrisOf(request.csrPem).filter((uri) => uri !== own);
    if (asked.length > 0) throw new CaError('IDENTITY', `renewal CSR of ${own} asks for ${asked.join(', ')}`);
    const issued = ca.issueWorkloadCertificate(request.csrPem, identity, request.ttlMs, { cluster: peer.cluster });
    logger?.info({ cluster: peer.cluster, spiffeId: issued.spiffeId, serial: issued.serialNumber, previousSerial: peer.serialNumber }, 'certificate renewed');
    return issued;
  } catch (error) {
    if (isCaError(error)) logger?.warn({ cluster: peer?.cluster, spiffeId: peer?.spiffeId, code: error.code, reason: error.reason }, 'renewal refused');
    throw error;
  }
}

/** The renewal peer of a TLS request: node's verdict on the client certificate, and what it names. */
export function renewalPeerOf(socket: TLSSocket): RenewalPeer | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.serialNumber) return undefined;
  const ou = (cert.subject as Record<string, string | string[] | undefined> | undefined)?.OU;
  return {
    authorized: socket.authorized,
    authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
    spiffeId: spiffeIdFromSubjectAltName(cert.subjectaltname),
    cluster: typeof ou === 'string' && ou.length > 0 ? ou : undefined,
    serialNumber: cert.serialNumber,
    notAfter: new Date(cert.valid_to),
  };
}

/** Bound on a bootstrap request body (CSR ~1.7 KB + fields). */
export const MAX_BOOTSTRAP_BODY_BYTES = 64 * 1024;

/** Wire shape of a successful bootstrap response (JSON). */
export interface BootstrapResponse {
  certChain: string[];
  certChainPem: string;
  rootCertPem: string;
  spiffeId: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

export function toBootstrapResponse(issued: IssuedCertificate): BootstrapResponse {
  return {
    certChain: issued.chain,
    certChainPem: issued.certChainPem,
    rootCertPem: issued.rootCertPem,
    spiffeId: issued.spiffeId,
    serialNumber: issued.serialNumber,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
  };
}

/**
 * An https request listener for `POST` (mount it at e.g. `/v1/bootstrap`) with a JSON body: a
 * BootstrapRequest (join token + CSR) or, without a token, a RenewalRequest authenticated by the
 * client certificate of the connection. Answers 200 BootstrapResponse, or `{code, message}` with
 * the CaError status. A request that did not come over TLS is refused (403 TLS_REQUIRED).
 */
export function createBootstrapHandler(
  ca: CertificateAuthority,
  tokens: JoinTokenStore,
  logger?: Logger,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const socket = req.socket as TLSSocket;
    if (!socket.encrypted) {
      const refused = new CaError('TLS_REQUIRED', 'plaintext bootstrap request refused');
      logger?.warn({ code: refused.code, remote: socket.remoteAddress }, 'bootstrap refused');
      return reply(refused.status, refused.toWire());
    }
    if (req.method !== 'POST') return reply(405, { code: 'METHOD', message: 'POST only' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BOOTSTRAP_BODY_BYTES) {
        reply(413, { code: 'TOO_LARGE', message: 'request body too large' });
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        return reply(400, { code: 'BAD_JSON', message: 'body is not JSON' });
      }
      if (typeof body !== 'object' || body === null) return reply(400, { code: 'BAD_JSON', message: 'body is not a JSON object' });
      const renewal = body.token === undefined;
      const fields = renewal ? (['csrPem'] as const) : (['cluster', 'token', 'csrPem', 'namespace', 'serviceAccount'] as const);
      const missing = fields.filter((field) => typeof body[field] !== 'string');
      if (missing.length > 0) return reply(400, { code: 'BAD_REQUEST', message: `missing string fields: ${missing.join(', ')}` });
      const issue = renewal
        ? Promise.resolve().then(() => renewWithPeerCertificate(ca, renewalPeerOf(socket), renewalRequestOf(body), logger))
        : bootstrapExchange(ca, tokens, body as unknown as BootstrapRequest, logger);
      issue.then(
        (issued) => reply(200, toBootstrapResponse(issued)),
        (error: unknown) => {
          if (isCaError(error)) return reply(error.status, error.toWire());
          logger?.error({ err: error }, 'bootstrap failed');
          reply(500, { code: 'INTERNAL', message: 'internal error' });
        },
      );
    });
  };
}

/** Only the fields a renewal may carry; a non-string identity field counts as asking for another identity. */
function renewalRequestOf(body: Record<string, unknown>): RenewalRequest {
  const optional = (field: string): string | undefined => (body[field] === undefined ? undefined : String(body[field]));
  return {
    csrPem: body.csrPem as string,
    ...(typeof body.ttlMs === 'number' ? { ttlMs: body.ttlMs } : {}),
    cluster: optional('cluster'),
    namespace: optional('namespace'),
    serviceAccount: optional('serviceAccount'),
  };
}
