import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { CertificateAuthority, IssuedCertificate } from './ca/certificate-authority.js';
import { CaError, isCaError } from './errors.js';
import { parseSpiffeId } from './identity.js';
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
    const issued = ca.issueWorkloadCertificate(request.csrPem, identity, request.ttlMs);
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
 * Renewal over an authenticated mTLS channel: the identity is the peer certificate's SPIFFE id
 * (verified by TLS), never the CSR's. `peerSpiffeId` is `spiffe://…` or a bare principal.
 */
export function renewForAuthenticatedPeer(
  ca: CertificateAuthority,
  peerSpiffeId: string | undefined,
  csrPem: string,
  ttlMs?: number,
): IssuedCertificate {
  const identity = peerSpiffeId ? parseSpiffeId(peerSpiffeId) : undefined;
  if (!identity) throw new CaError('AUTHN', 'no authenticated SPIFFE peer identity');
  return ca.issueWorkloadCertificate(csrPem, identity, ttlMs);
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
 * An http request listener for `POST` with a JSON BootstrapRequest body (mount it at e.g.
 * `/v1/bootstrap`). Answers 200 BootstrapResponse, or `{code, message}` with the CaError status.
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
      let body: Partial<BootstrapRequest>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<BootstrapRequest>;
      } catch {
        return reply(400, { code: 'BAD_JSON', message: 'body is not JSON' });
      }
      const fields = ['cluster', 'token', 'csrPem', 'namespace', 'serviceAccount'] as const;
      const missing = fields.filter((field) => typeof body[field] !== 'string');
      if (missing.length > 0) return reply(400, { code: 'BAD_REQUEST', message: `missing string fields: ${missing.join(', ')}` });
      bootstrapExchange(ca, tokens, body as BootstrapRequest, logger).then(
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
