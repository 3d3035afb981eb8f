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
  // The proxy passes trailers through, so it may say so upstream (RFC 9110 §10.1.4); other TE
  // codings are hop-by-hop and dropped, as Envoy does.
  const te = incoming.te;
  if (te !== undefined && hasTrailersToken(te)) out.te = 'trailers';
  return out;
}

function hasTrailersToken(te: string | string[]): boolean {
  const list = (Array.isArray(te) ? te.join(',') : te).toLowerCase();
  if (list === 'trailers') return true;
  for (const part of list.split(',')) if (part.split(';')[0].trim() === 'trailers') return true;
  return false;
}

/**
 * Fields that must not travel as trailers (RFC 9110 §6.5.1: framing, routing, request modifiers,
 * authentication, response control data, content metadata) or that are hop-by-hop: dropped when a
 * proxy forwards a trailer section.
 */
const FORBIDDEN_TRAILERS = new Set([
  ...HOP_BY_HOP,
  'content-length',
  'content-encoding',
  'content-type',
  'content-range',
  'host',
  'cache-control',
  'max-forwards',
  'pragma',
  'range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'authorization',
  'www-authenticate',
  'authentication-info',
  'proxy-authentication-info',
  'cookie',
  'set-cookie',
  'age',
  'expires',
  'date',
  'location',
  'retry-after',
  'vary',
  'warning',
]);

/** The trailer fields a proxy forwards (undefined when none are left). */
export function forwardableTrailers(trailers: HeaderMap | undefined): HeaderMap | undefined {
  if (!trailers) return undefined;
  let out: HeaderMap | undefined;
  for (const name in trailers) {
    const v = trailers[name];
    if (v === undefined) continue;
    const lower = name.toLowerCase();
    if (FORBIDDEN_TRAILERS.has(lower)) continue;
    (out ??= {})[lower] = v;
  }
  return out;
}
