import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { Agent, request } from 'undici';
import { generateKeyAndCsr, type WorkloadKeyType } from './ca/csr.js';
import { derToPem } from './ca/der-sign.js';
import { CaError, isCaError, type CaErrorCode } from './errors.js';
import type { BootstrapResponse } from './bootstrap.js';
import { spiffeId } from './identity.js';
import { caCertHashOf, parseJoinToken } from './join-tokens.js';
import { operatorIdentity } from './operator-identity.js';
import { spiffeIdentityCheck } from './tls/client-tls.js';
import { workloadCertificateFrom, type WorkloadCertificate } from './tls/certificate-store.js';

const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 10_000;

export interface BootstrapClientOptions {
  /**
   * The operator's bootstrap endpoint. `https://…/v1/bootstrap`: used as is. `http://…/v1/bootstrap`
   * (the operator API): asked with a GET (no token) where its TLS endpoint is; the token only ever
   * travels over TLS, except to a loopback address that offers no TLS endpoint (tests, one host).
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
  url: string;
  /** undefined: plaintext (loopback only). */
  tls?: { ca?: string; checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined };
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
  const dispatcher = new Agent({
    connect: { ...(endpoint.tls ?? {}) },
    headersTimeout: timeout,
    bodyTimeout: timeout,
    connectTimeout: timeout,
  });
  try {
    let response;
    try {
      response = await request(endpoint.url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          cluster: options.cluster,
          token: parseJoinToken(options.token).secret,
          csrPem,
          namespace: options.namespace,
          serviceAccount: options.serviceAccount,
          ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}),
        }),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw new CaError('CA_NOT_READY', `bootstrap request to ${endpoint.url} failed: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.body.text();
    if (response.statusCode === 401) throw new CaError('AUTHN', `bootstrap refused by ${endpoint.url}: ${text.slice(0, 200)}`);
    if (response.statusCode !== 200) {
      const code = response.statusCode >= 500 ? 'CA_NOT_READY' : (wireCode(text) ?? 'CSR_PARSE');
      throw new CaError(code, `bootstrap ${endpoint.url} answered ${response.statusCode}: ${text.slice(0, 200)}`);
    }
    const body = JSON.parse(text) as BootstrapResponse;
    return workloadCertificateFrom(privateKeyPem, body.certChainPem, body.rootCertPem);
  } finally {
    await dispatcher.close();
  }
}

/** Where to POST and how to trust it (see BootstrapClientOptions.url). */
export async function resolveBootstrapEndpoint(options: BootstrapClientOptions, timeoutMs = DEFAULT_BOOTSTRAP_TIMEOUT_MS, meshEndpoint = false): Promise<ResolvedEndpoint> {
  const url = new URL(options.url);
  if (url.protocol === 'https:') return { url: options.url, tls: await trustFor(options, url, timeoutMs, meshEndpoint) };
  if (url.protocol !== 'http:') throw new CaError('TLS_REQUIRED', `bootstrap URL ${options.url} is neither https nor http`);
  const tlsUrl = await askForTlsEndpoint(options.url, timeoutMs);
  if (tlsUrl) return resolveBootstrapEndpoint({ ...options, url: tlsUrl }, timeoutMs, true);
  if (isLoopback(url.hostname)) return { url: options.url };
  throw new CaError('TLS_REQUIRED', `${options.url} offers no TLS bootstrap endpoint; the join token is never sent in plaintext`);
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

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
