import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { Agent, request } from 'undici';
import { generateKeyAndCsr, type WorkloadKeyType } from './ca/csr.js';
import { derToPem } from './ca/der-sign.js';
import { CaError, isCaError, type CaErrorCode } from './errors.js';
import type { BootstrapResponse } from './bootstrap.js';
import { parseSpiffeId, spiffeId } from './identity.js';
import { caCertHashOf, parseJoinToken } from './join-tokens.js';
import { operatorIdentity } from './operator-identity.js';
import { spiffeIdentityCheck } from './tls/client-tls.js';
import { workloadCertificateFrom, type WorkloadCertificate } from './tls/certificate-store.js';

const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 10_000;

export interface BootstrapClientOptions {
  /**
   * The operator's bootstrap endpoint. `https://…/v1/bootstrap`: used as is. `http://…/v1/bootstrap`
   * (the operator API): asked with a GET (no token) where its TLS endpoint is; the token only ever
   * travels over TLS (no TLS endpoint on offer: TLS_REQUIRED, whatever the address).
   */
  url: string;
  cluster: string;
  /** The cluster's join token, `<secret>` or `<secret>.sha256:<root hash>` (covered by REDACT_PATHS as `token`). */
  token: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  ttlMs?: number;
  /** The mesh root (or the operator's CA) to verify the endpoint with; else the token's pin. */
  caPem?: string;
  /** Pin of the root that signs the operator's TLS certificate (`sha256:<hex>` of its SPKI); default: the token's. */
  caCertHash?: string;
  /** The server's SPIFFE id(s) replace the hostname check; default with a pinned root: the operator's identity. */
  expectedServerSpiffeIds?: string[];
  /** Workload key type (default ECDSA P-256). */
  keyType?: WorkloadKeyType;
  timeoutMs?: number;
}

interface ResolvedEndpoint {
  /** Always `https:`. */
  url: string;
  tls: { ca?: string; checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined };
}

/** Roots fetched and checked against a pin, per endpoint and pin: renewals skip the extra handshake. */
const pinnedRoots = new Map<string, string>();

/**
 * Proxy side of the join-token exchange: a fresh key and CSR, POSTed with the token over TLS;
 * returns the workload certificate (the key stays local). Throws CaError: AUTHN on 401 or when the
 * operator's TLS chain does not match the pin, TLS_REQUIRED when only plaintext is on offer,
 * CA_NOT_READY on transport errors (retryable).
 */
export async function requestBootstrapCertificate(options: BootstrapClientOptions): Promise<WorkloadCertificate> {
  const timeout = options.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
  const endpoint = await resolveBootstrapEndpoint(options, timeout);
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(options, options.keyType);
  const body = {
    cluster: options.cluster,
    token: parseJoinToken(options.token).secret,
    csrPem,
    namespace: options.namespace,
    serviceAccount: options.serviceAccount,
    ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}),
  };
  return postForCertificate(endpoint.url, endpoint.tls, body, privateKeyPem, timeout);
}

export interface RenewalClientOptions {
  /** The operator's bootstrap endpoint: `https://…`, or the operator API's `http://…/v1/bootstrap` that names it. */
  url: string;
  /** The certificate to renew: presented as the TLS client certificate (its key never leaves the proxy). */
  current: WorkloadCertificate;
  ttlMs?: number;
  /** The operator's SPIFFE id(s); default: the operator's identity in the certificate's trust domain. */
  expectedServerSpiffeIds?: string[];
  keyType?: WorkloadKeyType;
  timeoutMs?: number;
  now?: () => number;
}

/**
 * Renewal without the join token: a fresh key and a CSR for the current certificate's identity,
 * POSTed over mutual TLS with the current certificate as the client certificate; the operator is
 * verified with the mesh root the current certificate came with. The operator issues the SAME
 * identity and cluster. Throws CaError: AUTHN when the certificate is expired (not even sent) or
 * refused by the operator (the caller falls back to its join token), CA_NOT_READY on transport errors.
 */
export async function requestRenewedCertificate(options: RenewalClientOptions): Promise<WorkloadCertificate> {
  const timeout = options.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
  const { current } = options;
  const now = options.now?.() ?? Date.now();
  if (current.notAfter.getTime() <= now) throw new CaError('AUTHN', `certificate ${current.serialNumber} expired at ${current.notAfter.toISOString()}: renewal needs the join token`);
  const identity = current.spiffeId ? parseSpiffeId(current.spiffeId) : undefined;
  if (!identity) throw new CaError('AUTHN', `certificate ${current.serialNumber} carries no SPIFFE workload identity`);
  const url = await tlsUrlOf(options.url, timeout);
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(identity, options.keyType);
  const connect = {
    ca: current.rootCertPem,
    cert: current.certChainPem,
    key: current.privateKeyPem,
    checkServerIdentity: spiffeIdentityCheck(options.expectedServerSpiffeIds ?? [spiffeId(operatorIdentity(identity.trustDomain))]),
  };
  return postForCertificate(url, connect, { csrPem, ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}) }, privateKeyPem, timeout);
}

/** POSTs a bootstrap or renewal body over TLS; the answer's chain with the local key. */
async function postForCertificate(url: string, connect: object, body: object, privateKeyPem: string, timeout: number): Promise<WorkloadCertificate> {
  if (!url.startsWith('https:')) throw new CaError('TLS_REQUIRED', `${url} is not a TLS endpoint; the join token is never sent in plaintext`);
  const dispatcher = new Agent({ connect, headersTimeout: timeout, bodyTimeout: timeout, connectTimeout: timeout });
  try {
    let response;
    try {
      response = await request(url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw new CaError('CA_NOT_READY', `bootstrap request to ${url} failed: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.body.text();
    if (response.statusCode === 401) throw new CaError('AUTHN', `bootstrap refused by ${url}: ${text.slice(0, 200)}`);
    if (response.statusCode !== 200) {
      const code = response.statusCode >= 500 ? 'CA_NOT_READY' : (wireCode(text) ?? 'CSR_PARSE');
      throw new CaError(code, `bootstrap ${url} answered ${response.statusCode}: ${text.slice(0, 200)}`);
    }
    const answer = JSON.parse(text) as BootstrapResponse;
    return workloadCertificateFrom(privateKeyPem, answer.certChainPem, answer.rootCertPem);
  } finally {
    await dispatcher.close();
  }
}

/** An https URL as is; the operator API's http URL: the TLS endpoint it names (TLS_REQUIRED if none). */
async function tlsUrlOf(url: string, timeoutMs: number): Promise<string> {
  const protocol = new URL(url).protocol;
  if (protocol === 'https:') return url;
  if (protocol !== 'http:') throw new CaError('TLS_REQUIRED', `bootstrap URL ${url} is neither https nor http`);
  const tlsUrl = await askForTlsEndpoint(url, timeoutMs);
  if (!tlsUrl) throw new CaError('TLS_REQUIRED', `${url} offers no TLS bootstrap endpoint; the join token is never sent in plaintext`);
  return tlsUrl;
}

/** Where to POST and how to trust it (see BootstrapClientOptions.url). */
export async function resolveBootstrapEndpoint(options: BootstrapClientOptions, timeoutMs = DEFAULT_BOOTSTRAP_TIMEOUT_MS): Promise<ResolvedEndpoint> {
  const tlsUrl = await tlsUrlOf(options.url, timeoutMs);
  const meshEndpoint = tlsUrl !== options.url;
  return { url: tlsUrl, tls: await trustFor(options, new URL(tlsUrl), timeoutMs, meshEndpoint) };
}

/** `meshEndpoint`: the operator pointed us there, so its certificate comes from the mesh CA, which only a pin or caPem can vouch for. */
async function trustFor(options: BootstrapClientOptions, url: URL, timeoutMs: number, meshEndpoint: boolean): Promise<ResolvedEndpoint['tls']> {
  const pin = options.caCertHash ?? parseJoinToken(options.token).caCertHash;
  const expected = options.expectedServerSpiffeIds;
  if (options.caPem) return { ca: options.caPem, ...(expected ? { checkServerIdentity: spiffeIdentityCheck(expected) } : {}) };
  if (!pin && meshEndpoint) {
    throw new CaError('AUTHN', `cannot authenticate the operator at ${url.host}: the join token carries no CA pin (sha256:…) and no CA file was given`);
  }
  if (!pin) return expected ? { checkServerIdentity: spiffeIdentityCheck(expected) } : {};
  const key = `${url.host} ${pin}`;
  let root = pinnedRoots.get(key);
  if (!root) {
    root = await fetchPinnedRoot(url, pin, timeoutMs);
    pinnedRoots.set(key, root);
  }
  return { ca: root, checkServerIdentity: spiffeIdentityCheck(expected ?? [spiffeId(operatorIdentity(options.trustDomain))]) };
}

/**
 * kubeadm-style discovery: one unverified handshake to read the chain the server sends, keeping
 * the certificate whose SPKI hash is the pin. Trust comes from the pin alone; the request itself
 * then runs over a connection verified against that root (and the operator's identity).
 */
export function fetchPinnedRoot(url: URL, pin: string, timeoutMs: number): Promise<string> {
  const port = Number(url.port || 443);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }) });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      const chain: DetailedPeerCertificate[] = [];
      for (let cert = socket.getPeerCertificate(true); cert?.raw && !chain.includes(cert); cert = cert.issuerCertificate) chain.push(cert);
      socket.destroy();
      clearTimeout(timer);
      const match = chain.map((c) => derToPem(c.raw)).find((pem) => {
        const x509 = new X509Certificate(pem);
        return x509.ca && caCertHashOf(pem) === pin;
      });
      if (match) resolve(match);
      else reject(new CaError('AUTHN', `the TLS chain of ${url.host} holds no CA certificate matching ${pin}`));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(isCaError(error) ? error : new CaError('CA_NOT_READY', `TLS to ${url.host} failed: ${error.message}`, { cause: error }));
    });
  });
}

/** GET on the operator API's bootstrap path: `{tlsUrl}` when it serves bootstrap over TLS. */
async function askForTlsEndpoint(url: string, timeoutMs: number): Promise<string | undefined> {
  let response;
  try {
    response = await request(url, { method: 'GET', signal: AbortSignal.timeout(timeoutMs), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  } catch (error) {
    throw new CaError('CA_NOT_READY', `bootstrap discovery at ${url} failed: ${(error as Error).message}`, { cause: error });
  }
  const text = await response.body.text();
  if (response.statusCode >= 500) throw new CaError('CA_NOT_READY', `bootstrap discovery at ${url} answered ${response.statusCode}`);
  if (response.statusCode !== 200) return undefined;
  try {
    const tlsUrl = (JSON.parse(text) as { tlsUrl?: unknown }).tlsUrl;
    return typeof tlsUrl === 'string' && tlsUrl.startsWith('https://') ? tlsUrl : undefined;
  } catch {
    return undefined;
  }
}

const CLIENT_ERROR_CODES = new Set<CaErrorCode>(['CSR_PARSE', 'CSR_SIGNATURE', 'CSR_KEY', 'TTL', 'IDENTITY', 'TLS_REQUIRED']);

/** The CaError code of a 4xx answer's `{code, message}` body, when it is one. */
function wireCode(text: string): CaErrorCode | undefined {
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return CLIENT_ERROR_CODES.has(code as CaErrorCode) ? (code as CaErrorCode) : undefined;
  } catch {
    return undefined;
  }
}
