import { Agent, request } from 'undici';
import { generateKeyAndCsr } from './ca/csr.js';
import { CaError } from './errors.js';
import type { BootstrapResponse } from './bootstrap.js';
import { spiffeIdentityCheck } from './tls/client-tls.js';
import { workloadCertificateFrom, type WorkloadCertificate } from './tls/certificate-store.js';

const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 10_000;

export interface BootstrapClientOptions {
  /** The operator's bootstrap endpoint (createBootstrapHandler), http(s)://…/v1/bootstrap. */
  url: string;
  cluster: string;
  /** The cluster's join token (keep it out of logs: it is covered by REDACT_PATHS as `token`). */
  token: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  ttlMs?: number;
  /** https: the mesh root (or the operator's CA) to verify the endpoint with. */
  caPem?: string;
  /** https with a mesh-issued operator certificate: its SPIFFE id(s) replace the hostname check. */
  expectedServerSpiffeIds?: string[];
  timeoutMs?: number;
}

/**
 * Proxy side of the join-token exchange: a fresh key and CSR, POSTed with the token; returns the
 * workload certificate (key stays local). Throws CaError AUTHN on 401, CA_NOT_READY on transport errors.
 */
export async function requestBootstrapCertificate(options: BootstrapClientOptions): Promise<WorkloadCertificate> {
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(options);
  const timeout = options.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
  const dispatcher = new Agent({
    connect: {
      ...(options.caPem ? { ca: options.caPem } : {}),
      ...(options.expectedServerSpiffeIds ? { checkServerIdentity: spiffeIdentityCheck(options.expectedServerSpiffeIds) } : {}),
    },
    headersTimeout: timeout,
    bodyTimeout: timeout,
    connectTimeout: timeout,
  });
  try {
    let response;
    try {
      response = await request(options.url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          cluster: options.cluster,
          token: options.token,
          csrPem,
          namespace: options.namespace,
          serviceAccount: options.serviceAccount,
          ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}),
        }),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw new CaError('CA_NOT_READY', `bootstrap request to ${options.url} failed: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.body.text();
    if (response.statusCode === 401) throw new CaError('AUTHN', `bootstrap refused by ${options.url}: ${text.slice(0, 200)}`);
    if (response.statusCode !== 200) {
      throw new CaError(response.statusCode >= 500 ? 'CA_NOT_READY' : 'CSR_PARSE', `bootstrap ${options.url} answered ${response.statusCode}: ${text.slice(0, 200)}`);
    }
    const body = JSON.parse(text) as BootstrapResponse;
    return workloadCertificateFrom(privateKeyPem, body.certChainPem, body.rootCertPem);
  } finally {
    await dispatcher.close();
  }
}
