import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific headers, plus the ones undici refuses to forward. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
]);

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name);
}

export type HeaderMap = Record<string, string | string[] | undefined>;

/** Copies end-to-end headers (drops hop-by-hop ones and any named in Connection). */
export function endToEndHeaders(incoming: IncomingHttpHeaders | HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  const connection = incoming.connection;
  let extra: string[] | undefined;
  if (connection) {
    const list = (Array.isArray(connection) ? connection.join(',') : connection).toLowerCase();
    if (list !== 'keep-alive' && list !== 'close') extra = list.split(',').map((s) => s.trim());
  }
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name)) continue;
    if (extra && extra.includes(name)) continue;
    const v = incoming[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
