import type { ProxySnapshot } from '../mesh/snapshot.js';
import type { DiscoveryServer, ProxyStatus } from './server.js';
import type { AnyRequest, AnyResponse } from './transport.js';

export const DEBUG_PROXIES_PATH = '/debug/proxies';
export const DEBUG_CONFIG_PREFIX = '/debug/config/';

/** Body of `GET /debug/proxies`. */
export interface ProxiesResponse {
  proxies: ProxyStatus[];
}

/** Body of `GET /debug/config/<proxy>`: the proxy's row and its current snapshot (private keys redacted). */
export interface ProxyConfigResponse {
  proxy: ProxyStatus;
  snapshot: ProxySnapshot | null;
}

const SECRET_FIELDS = new Set(['privateKey']);

/** Deep copy without key material: the admin API never shows private keys. */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
    out[key] = SECRET_FIELDS.has(key) && typeof member === 'string' ? '[redacted]' : redactSecrets(member);
  }
  return out as T;
}

function sendJson(res: AnyResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

/** Serves `/debug/proxies` and `/debug/config/<proxy id, URL-encoded or raw>`; false for other paths. */
export function handleDebugRequest(server: Pick<DiscoveryServer, 'status' | 'findProxy' | 'proxySnapshot'>, req: AnyRequest, res: AnyResponse): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== DEBUG_PROXIES_PATH && !path.startsWith(DEBUG_CONFIG_PREFIX)) return false;
  if (req.method !== 'GET') {
    sendJson(res, 405, { error: `${req.method} is not allowed on ${path}` });
    return true;
  }
  if (path === DEBUG_PROXIES_PATH) {
    const body: ProxiesResponse = { proxies: server.status() };
    sendJson(res, 200, body);
    return true;
  }
  let query: string;
  try {
    query = decodeURIComponent(path.slice(DEBUG_CONFIG_PREFIX.length));
  } catch {
    sendJson(res, 400, { error: 'proxy id is not valid URL encoding' });
    return true;
  }
  let proxy: ProxyStatus | undefined;
  try {
    proxy = server.findProxy(query);
  } catch (err) {
    sendJson(res, 409, { error: (err as Error).message });
    return true;
  }
  if (!proxy) {
    sendJson(res, 404, { error: `proxy "${query}" is not known to the operator` });
    return true;
  }
  const snapshot = server.proxySnapshot(proxy.id);
  const body: ProxyConfigResponse = { proxy, snapshot: snapshot ? redactSecrets(snapshot) : null };
  sendJson(res, 200, body);
  return true;
}
