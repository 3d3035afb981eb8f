/**
 * Stable error codes for responses the proxy produces itself. Each maps to one Envoy response flag
 * (a bounded set, used as the `response_flags` metric label) and one HTTP status.
 */
export type ProxyErrorCode =
  | 'no_route'
  | 'no_cluster'
  | 'no_healthy_upstream'
  | 'overflow'
  | 'upstream_timeout'
  | 'connect_failure'
  | 'upstream_reset'
  | 'delay_injected'
  | 'fault_injected'
  | 'downstream_reset'
  | 'unauthorized';

export interface ProxyErrorInfo {
  flag: string;
  status: number;
  body: string;
}

export const PROXY_ERRORS: Record<ProxyErrorCode, ProxyErrorInfo> = {
  no_route: { flag: 'NR', status: 404, body: 'no route' },
  no_cluster: { flag: 'NC', status: 503, body: 'no cluster' },
  no_healthy_upstream: { flag: 'UH', status: 503, body: 'no healthy upstream' },
  overflow: { flag: 'UO', status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow' },
  upstream_timeout: { flag: 'UT', status: 504, body: 'upstream request timeout' },
  connect_failure: { flag: 'UF', status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure' },
  upstream_reset: { flag: 'UC', status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination' },
  delay_injected: { flag: 'DI', status: 200, body: '' },
  fault_injected: { flag: 'FI', status: 503, body: 'fault filter abort' },
  downstream_reset: { flag: 'DC', status: 0, body: '' },
  unauthorized: { flag: 'UAEX', status: 403, body: 'RBAC: access denied' },
};

export const RESPONSE_FLAGS_HEADER = 'x-trellis-response-flags';

/** How an upstream attempt failed before response headers arrived. */
export type AttemptFailure = 'connect-failure' | 'reset' | 'per-try-timeout' | 'overflow' | 'no-healthy';

const CONNECT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED']);

/** Classifies an undici / socket error of one attempt. */
export function classifyUpstreamError(err: unknown): AttemptFailure {
  const code = (err as { code?: string } | undefined)?.code;
  if (code && CONNECT_CODES.has(code)) return 'connect-failure';
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause?.code;
  if (cause && CONNECT_CODES.has(cause)) return 'connect-failure';
  return 'reset';
}

export function failureError(f: AttemptFailure): ProxyErrorCode {
  switch (f) {
    case 'connect-failure': return 'connect_failure';
    case 'per-try-timeout': return 'upstream_timeout';
    case 'overflow': return 'overflow';
    case 'no-healthy': return 'no_healthy_upstream';
    default: return 'upstream_reset';
  }
}
