import { readFileSync } from 'node:fs';
import { Agent, fetch } from 'undici';
import { DEBUG_CONFIG_PREFIX, DEBUG_PROXIES_PATH } from './debug-api.js';
import type { ProxiesResponse, ProxyConfigResponse } from './debug-api.js';

/** Default operator address for the CLI: $TRELLIS_OPERATOR, else the local plaintext discovery port. */
export const DEFAULT_OPERATOR_URL = 'http://127.0.0.1:15010';

export interface OperatorConnection {
  url: string;
  /** PEM files for an https operator: CA to trust, and a client certificate when it requires mTLS. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export class OperatorApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'OperatorApiError';
  }
}

async function getJson<T>(conn: OperatorConnection, path: string): Promise<T> {
  const base = conn.url.replace(/\/+$/, '');
  const dispatcher = base.startsWith('https:')
    ? new Agent({
        connect: {
          ca: conn.caFile ? readFileSync(conn.caFile) : undefined,
          cert: conn.certFile ? readFileSync(conn.certFile) : undefined,
          key: conn.keyFile ? readFileSync(conn.keyFile) : undefined,
        },
      })
    : undefined;
  let response;
  try {
    response = await fetch(`${base}${path}`, { dispatcher, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new OperatorApiError(`cannot reach the operator at ${base}: ${cause?.message ?? (err as Error).message}`);
  } finally {
    void dispatcher?.close();
  }
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // not JSON: keep the text
    }
    throw new OperatorApiError(`operator at ${base} answered ${response.status}: ${message}`, response.status);
  }
  return JSON.parse(text) as T;
}

export function fetchProxies(conn: OperatorConnection): Promise<ProxiesResponse> {
  return getJson<ProxiesResponse>(conn, DEBUG_PROXIES_PATH);
}

export function fetchProxyConfig(conn: OperatorConnection, proxy: string): Promise<ProxyConfigResponse> {
  return getJson<ProxyConfigResponse>(conn, `${DEBUG_CONFIG_PREFIX}${encodeURIComponent(proxy)}`);
}
