import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { ExtensionProvider } from '../../mesh/snapshot.js';

/** Istio's default envoyExtAuthzHttp timeout. */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;
/** Envoy answers 403 when the authorization service cannot be reached (status_on_error). */
export const EXT_AUTHZ_ERROR_STATUS = 403;
/** Bound on what we read back from the provider. */
const MAX_AUTHZ_BODY_BYTES = 64 * 1024;
/** Envoy always sends these to an HTTP authorization service, besides includeRequestHeadersInCheck. */
const ALWAYS_FORWARDED = ['host', 'authorization', 'content-length'];
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'content-length', 'host', 'date']);

export interface ExtAuthzCheckRequest {
  method: string;
  /** Original path with query. */
  path: string;
  host?: string;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
}

export type ExtAuthzResult =
  | { allowed: true; headersToUpstream: Record<string, string>; reason: string }
  | { allowed: false; status: number; body: string; headersToDownstream: Record<string, string>; reason: string };

export interface ExtAuthzOptions {
  /** Maps the provider's service/port to an address to dial (default: the service name via DNS). */
  resolve?: (service: string, port: number) => { host: string; port: number };
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

function pickHeaders(source: IncomingHttpHeaders, names: string[] | undefined, all: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const wanted = new Set((names ?? []).map((name) => name.toLowerCase()));
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (all ? HOP_BY_HOP.has(name) : !wanted.has(name)) continue;
    out[name] = firstValue(value)!;
  }
  return out;
}

/**
 * Envoy-style HTTP ext-authz check for a CUSTOM AuthorizationPolicy: sends the original method to
 * `http://<service>:<port><pathPrefix><path>` with Host, Authorization and the configured headers
 * (no body). 2xx ⇒ allow, copying headersToUpstreamOnAllow; any other status ⇒ deny with the
 * provider's status, body and headersToDownstreamOnDeny (all response headers when unset).
 * Transport errors and timeouts ⇒ 403, or allow when failOpen.
 */
export async function checkExternalAuthz(
  provider: ExtensionProvider,
  req: ExtAuthzCheckRequest,
  options: ExtAuthzOptions = {},
): Promise<ExtAuthzResult> {
  const config = provider.envoyExtAuthzHttp;
  if (!config) {
    return { allowed: false, status: EXT_AUTHZ_ERROR_STATUS, body: '', headersToDownstream: {}, reason: `provider ${provider.name} is not envoyExtAuthzHttp` };
  }
  const target = options.resolve?.(config.service, config.port) ?? { host: config.service, port: config.port };
  const headers: Record<string, string> = {};
  for (const name of [...ALWAYS_FORWARDED, ...(config.includeRequestHeadersInCheck ?? [])]) {
    const value = firstValue(req.headers[name.toLowerCase()]);
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  if (req.host) headers.host = req.host;
  headers['content-length'] = '0';
  const timeoutMs = config.timeoutMs ?? DEFAULT_EXT_AUTHZ_TIMEOUT_MS;
  const path = `${config.pathPrefix ?? ''}${req.path}`;

  const onError = (reason: string): ExtAuthzResult =>
    config.failOpen
      ? { allowed: true, headersToUpstream: {}, reason: `ext-authz ${provider.name} failed open: ${reason}` }
      : { allowed: false, status: EXT_AUTHZ_ERROR_STATUS, body: '', headersToDownstream: {}, reason: `ext-authz ${provider.name} error: ${reason}` };

  return new Promise<ExtAuthzResult>((resolve) => {
    const outgoing = httpRequest(
      { host: target.host, port: target.port, method: req.method, path, headers, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_AUTHZ_BODY_BYTES) chunks.push(chunk);
        });
        res.on('error', (error) => resolve(onError(error.message)));
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 500;
          if (status >= 200 && status < 300) {
            resolve({
              allowed: true,
              headersToUpstream: pickHeaders(res.headers, config.headersToUpstreamOnAllow, false),
              reason: `ext-authz ${provider.name} allowed (${status})`,
            });
            return;
          }
          const downstreamNames = config.headersToDownstreamOnDeny ?? [];
          resolve({
            allowed: false,
            status,
            body: Buffer.concat(chunks).toString('utf8'),
            headersToDownstream: pickHeaders(res.headers, downstreamNames, downstreamNames.length === 0),
            reason: `ext-authz ${provider.name} denied (${status})`,
          });
        });
      },
    );
    // `timeout` on http.request is idle time only; bound the whole exchange too.
    const timer = setTimeout(() => outgoing.destroy(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
    outgoing.on('timeout', () => outgoing.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    outgoing.on('error', (error) => {
      clearTimeout(timer);
      resolve(onError(error.message));
    });
    outgoing.end();
  });
}
