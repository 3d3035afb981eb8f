/**
 * Strict HTTP/1.1 message-head parsing for the lean fast path (RFC 9112). Anything ambiguous is
 * refused rather than guessed: bare CR or LF, obs-fold, whitespace before a colon, control
 * characters in values, both Content-Length and Transfer-Encoding, a Transfer-Encoding other than
 * `chunked`, differing Content-Length values — the usual request-smuggling vectors.
 */

/** Largest request or response head accepted, in bytes (node:http's default too). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Most header fields accepted in one head. */
export const MAX_HEADER_COUNT = 200;

export type HeaderValues = Record<string, string | string[] | undefined>;

/** How a message body is delimited. */
export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'close' };

export interface RequestHead {
  method: string;
  target: string;
  /** Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0. */
  minor: number;
  headers: HeaderValues;
  framing: BodyFraming;
  keepAlive: boolean;
  /** `Upgrade` requested, CONNECT, or `Expect`: served by the full node:http path. */
  special: boolean;
}

export interface ResponseHead {
  status: number;
  reason: string;
  minor: number;
  headers: HeaderValues;
  /** Framing as if the request was not HEAD and the status allows a body. */
  framing: BodyFraming;
  keepAlive: boolean;
}

/** A head the parser refuses; `status` is what a server answers (400 or 431). */
export class HeadError extends Error {
  constructor(
    readonly status: 400 | 431 | 501,
    message: string,
  ) {
    super(message);
  }
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Finds the end of a head starting at `start` in `buf`: the index just past CRLFCRLF, or -1 when
 * more bytes are needed (`from`: where to resume searching). Throws 431 past the size limit.
 */
export function findHeadEnd(buf: Buffer, start: number, from = start): number {
  const i = buf.indexOf(CRLFCRLF, from);
  if (i < 0) {
    if (buf.length - start > MAX_HEAD_BYTES) throw new HeadError(431, 'request head too large');
    return -1;
  }
  if (i + 4 - start > MAX_HEAD_BYTES) throw new HeadError(431, 'request head too large');
  return i + 4;
}

// RFC 9110 token characters.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = 1;
for (let c = 97; c <= 122; c++) TOKEN[c] = 1;

/** True when `c` may start a request line (a method is a token). */
export function isTokenByte(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}

/** Duplicates of these are dropped after the first, as node:http does. */
const SINGLE = new Set(['content-type', 'user-agent', 'referer', 'authorization', 'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);

/**
 * Parses the header lines of `text` (from `from`, the index after the start line's CRLF) into
 * lower-cased names. Requests join duplicates as node:http does (`set-cookie` is an array, `cookie`
 * joins with "; "); responses keep every duplicate (arrays), as undici does.
 */
function parseFields(text: string, from: number, joinDuplicates: boolean): HeaderValues {
  const headers: HeaderValues = {};
  let count = 0;
  let pos = from;
  const end = text.length - 2; // the final empty line's CRLF
  // Indices into `text` rather than a string per line: a head costs one string per name and value.
  while (pos < end) {
    const eol = text.indexOf('\r\n', pos);
    if (++count > MAX_HEADER_COUNT) throw new HeadError(431, 'too many header fields');
    const colon = text.indexOf(':', pos);
    if (colon <= pos || colon > eol) throw new HeadError(400, 'malformed header field');
    for (let i = pos; i < colon; i++) {
      const c = text.charCodeAt(i);
      if (c >= 128 || TOKEN[c] === 0) throw new HeadError(400, `invalid header name ${JSON.stringify(text.slice(pos, Math.min(colon, pos + 40)))}`);
    }
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
    for (let i = vs; i < ve; i++) {
      const c = text.charCodeAt(i);
      if ((c < 32 && c !== 9) || c === 127) throw new HeadError(400, 'control character in header value');
    }
    const value = text.slice(vs, ve);
    const name = lowerName(text, pos, colon);
    pos = eol + 2;
    const prev = headers[name];
    if (prev === undefined) {
      headers[name] = name === 'set-cookie' ? [value] : value;
    } else if (Array.isArray(prev)) {
      prev.push(value);
    } else if (!joinDuplicates) {
      headers[name] = [prev, value];
    } else if (name === 'content-length' || name === 'host' || name === 'transfer-encoding') {
      // Kept apart so framing checks can refuse conflicting copies.
      headers[name] = [prev, value];
    } else if (SINGLE.has(name)) {
      // first one wins
    } else {
      headers[name] = `${prev}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return headers;
}

/** Lower-case names of header names already seen with upper-case letters (Date, Content-Type...). */
const LOWER_NAMES = new Map<string, string>();

/** The lower-cased name `text[start, end)`; a name already lower-case is returned as sliced. */
function lowerName(text: string, start: number, end: number): string {
  const raw = text.slice(start, end);
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      let lower = LOWER_NAMES.get(raw);
      if (lower === undefined) {
        lower = raw.toLowerCase();
        if (LOWER_NAMES.size < 512) LOWER_NAMES.set(raw, lower);
      }
      return lower;
    }
  }
  return raw;
}

function checkLineBreaks(text: string): void {
  // After splitting on CRLF no CR or LF may remain: a bare one is a smuggling vector.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13) {
      if (text.charCodeAt(i + 1) !== 10) throw new HeadError(400, 'bare CR in head');
      i++;
    } else if (c === 10) throw new HeadError(400, 'bare LF in head');
  }
}

function hasToken(v: string | string[] | undefined, token: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'string') {
    for (const one of v) if (hasToken(one, token)) return true;
    return false;
  }
  // Case-insensitive search of the comma-separated list, without splitting (`token` is lower-case).
  const n = v.length;
  let i = 0;
  while (i < n) {
    let s = i;
    let e = v.indexOf(',', i);
    if (e < 0) e = n;
    i = e + 1;
    while (s < e && (v.charCodeAt(s) === 32 || v.charCodeAt(s) === 9)) s++;
    while (e > s && (v.charCodeAt(e - 1) === 32 || v.charCodeAt(e - 1) === 9)) e--;
    if (e - s !== token.length) continue;
    let same = true;
    for (let k = 0; k < token.length; k++) {
      if ((v.charCodeAt(s + k) | 0x20) !== token.charCodeAt(k)) {
        same = false;
        break;
      }
    }
    if (same) return true;
  }
  return false;
}

/** Content-Length / Transfer-Encoding framing of a message; throws on anything ambiguous. */
function framingOf(headers: HeaderValues, isRequest: boolean): BodyFraming {
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined) {
    if (cl !== undefined) throw new HeadError(400, 'both Content-Length and Transfer-Encoding');
    const codings = (Array.isArray(te) ? te.join(',') : te).split(',').map((s) => s.trim().toLowerCase());
    if (codings[codings.length - 1] !== 'chunked') {
      if (isRequest) throw new HeadError(400, 'Transfer-Encoding without chunked last');
      return { kind: 'close' };
    }
    if (codings.length !== 1) {
      if (isRequest) throw new HeadError(501, `unsupported Transfer-Encoding ${codings.join(', ')}`);
    }
    headers['transfer-encoding'] = Array.isArray(te) ? te.join(', ') : te;
    return { kind: 'chunked' };
  }
  if (cl !== undefined) {
    const values = Array.isArray(cl) ? cl : [cl];
    const first = values[0];
    for (const v of values) if (v !== first) throw new HeadError(400, 'conflicting Content-Length values');
    if (!/^\d{1,15}$/.test(first)) throw new HeadError(400, 'invalid Content-Length');
    headers['content-length'] = first;
    const length = Number(first);
    return length === 0 ? { kind: 'none' } : { kind: 'length', length };
  }
  return isRequest ? { kind: 'none' } : { kind: 'close' };
}

function keepAliveOf(minor: number, connection: string | string[] | undefined): boolean {
  if (minor === 1) return !hasToken(connection, 'close');
  return hasToken(connection, 'keep-alive');
}

/**
 * Parses a chunked body's trailer section (`text`: the field lines, each ending in CRLF, without
 * the final empty line) with the same strictness as a head; duplicates are kept as arrays.
 */
export function parseTrailerFields(text: string): HeaderValues {
  return parseFields(`${text}\r\n`, 0, false);
}

/** Parses a request head (`buf[start, end)`, end just past CRLFCRLF). */
export function parseRequestHead(buf: Buffer, start: number, end: number): RequestHead {
  const text = buf.toString('latin1', start, end);
  checkLineBreaks(text);
  const eol = text.indexOf('\r\n');
  const sp1 = text.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : text.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 > eol) throw new HeadError(400, 'malformed request line');
  const method = text.slice(0, sp1);
  const target = text.slice(sp1 + 1, sp2);
  const version = text.slice(sp2 + 1, eol);
  if (!isToken(method)) throw new HeadError(400, 'invalid method');
  if (target.length === 0) throw new HeadError(400, 'empty request target');
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 32 || c === 127) throw new HeadError(400, 'invalid request target');
  }
  let minor: number;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else throw new HeadError(version.startsWith('HTTP/') ? 501 : 400, `unsupported protocol ${JSON.stringify(version.slice(0, 20))}`);
  const headers = parseFields(text, eol + 2, true);
  const host = headers.host;
  if (Array.isArray(host)) throw new HeadError(400, 'more than one Host header');
  if (minor === 1 && host === undefined) throw new HeadError(400, 'missing Host header');
  const framing = framingOf(headers, true);
  const connection = headers.connection;
  const special = method === 'CONNECT' || headers.expect !== undefined || (headers.upgrade !== undefined && hasToken(connection, 'upgrade'));
  return { method, target, minor, headers, framing, keepAlive: keepAliveOf(minor, connection), special };
}

/** Parses a response head (`buf[start, end)`, end just past CRLFCRLF). */
export function parseResponseHead(buf: Buffer, start: number, end: number): ResponseHead {
  const text = buf.toString('latin1', start, end);
  checkLineBreaks(text);
  const eol = text.indexOf('\r\n');
  // HTTP/1.x SP 3DIGIT SP reason
  if (eol < 12 || !text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 32) throw new HeadError(400, 'malformed status line');
  const minorCh = text.charCodeAt(7);
  if (minorCh !== 48 && minorCh !== 49) throw new HeadError(400, 'unsupported protocol');
  const minor = minorCh - 48;
  const code = text.slice(9, 12);
  if (!/^\d{3}$/.test(code)) throw new HeadError(400, 'invalid status code');
  if (eol > 12 && text.charCodeAt(12) !== 32) throw new HeadError(400, 'malformed status line');
  const status = Number(code);
  const reason = eol > 13 ? text.slice(13, eol) : '';
  const headers = parseFields(text, eol + 2, false);
  const framing = framingOf(headers, false);
  return { status, reason, minor, headers, framing, keepAlive: keepAliveOf(minor, headers.connection) };
}
