import type { CorsPolicy } from '../../mesh/snapshot.js';
import { compileStringMatcher, type CompiledMatcher } from './string-matcher.js';

export interface CompiledCors {
  origins: CompiledMatcher[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials: boolean;
  unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

export function compileCors(policy: CorsPolicy | undefined): CompiledCors | undefined {
  if (!policy) return undefined;
  const join = (list: string[]): string | undefined => (list.length ? list.join(',') : undefined);
  return {
    origins: policy.allowOrigins.map((m) => compileStringMatcher(m)),
    allowMethods: join(policy.allowMethods),
    allowHeaders: join(policy.allowHeaders),
    exposeHeaders: join(policy.exposeHeaders),
    maxAge: policy.maxAgeSeconds !== undefined ? String(policy.maxAgeSeconds) : undefined,
    allowCredentials: policy.allowCredentials === true,
    unmatchedPreflights: policy.unmatchedPreflights,
  };
}

/** What the CORS filter does with a request. */
export type CorsOutcome =
  /** Answer the preflight now with these headers (status 200, empty body). */
  | { kind: 'preflight'; headers: Record<string, string> }
  /** Forward; add these headers to the response (empty when the origin did not match). */
  | { kind: 'forward'; responseHeaders?: Record<string, string> };

export function originAllowed(cors: CompiledCors, origin: string): boolean {
  for (let i = 0; i < cors.origins.length; i++) if (cors.origins[i](origin)) return true;
  return false;
}

/** Envoy's CORS filter semantics: a preflight is OPTIONS with Origin and Access-Control-Request-Method. */
export function evaluateCors(
  cors: CompiledCors,
  method: string,
  origin: string | undefined,
  requestMethodHeader: string | undefined,
): CorsOutcome {
  if (origin === undefined) return { kind: 'forward' };
  const matched = originAllowed(cors, origin);
  const isPreflight = method === 'OPTIONS' && requestMethodHeader !== undefined;
  if (isPreflight) {
    if (!matched) return cors.unmatchedPreflights === 'IGNORE' ? { kind: 'preflight', headers: {} } : { kind: 'forward' };
    const headers: Record<string, string> = { 'access-control-allow-origin': origin };
    if (cors.allowMethods) headers['access-control-allow-methods'] = cors.allowMethods;
    if (cors.allowHeaders) headers['access-control-allow-headers'] = cors.allowHeaders;
    if (cors.maxAge) headers['access-control-max-age'] = cors.maxAge;
    if (cors.allowCredentials) headers['access-control-allow-credentials'] = 'true';
    return { kind: 'preflight', headers };
  }
  if (!matched) return { kind: 'forward' };
  const responseHeaders: Record<string, string> = { 'access-control-allow-origin': origin };
  if (cors.allowCredentials) responseHeaders['access-control-allow-credentials'] = 'true';
  if (cors.exposeHeaders) responseHeaders['access-control-expose-headers'] = cors.exposeHeaders;
  return { kind: 'forward', responseHeaders };
}
