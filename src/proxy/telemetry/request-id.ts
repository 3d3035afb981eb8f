import type { IncomingHttpHeaders } from 'node:http';
import { randomHexId } from './random-id.js';

const VARIANT = '89ab';
const BATCH = 128;
let batch = '';
let at = 0;

function formatUuidV4(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${VARIANT[parseInt(h[16], 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A random UUID v4. Ids are formatted 128 at a time (random bytes from the shared hex pool,
 * random-id.ts) into one flat string, and each id is a slice of it: one small string object per
 * request, where crypto.randomUUID assembles each id from 16 byte-to-hex pieces.
 */
export function randomUuidV4(): string {
  if (at >= batch.length) {
    const ids: string[] = new Array(BATCH);
    for (let i = 0; i < BATCH; i++) ids[i] = formatUuidV4(randomHexId(16));
    batch = ids.join('');
    at = 0;
  }
  const id = batch.slice(at, at + 36);
  at += 36;
  return id;
}

/**
 * Returns the request's x-request-id, generating a UUID v4 and setting it in `headers` when absent
 * or empty, so the same id travels upstream and into the access log. A repeated header keeps its
 * first value (and is collapsed to it).
 */
export function ensureRequestId(headers: IncomingHttpHeaders): string {
  const current = headers['x-request-id'];
  const value = Array.isArray(current) ? current[0] : current;
  if (value !== undefined && value !== '') {
    if (Array.isArray(current)) headers['x-request-id'] = value;
    return value;
  }
  const id = randomUuidV4();
  headers['x-request-id'] = id;
  return id;
}
