import type { IncomingHttpHeaders } from 'node:http';
import { randomHexId } from './random-id.js';

const VARIANT = '89ab';

/**
 * A random UUID v4 cut from the shared random hex pool (random-id.ts): one string build per
 * request, where crypto.randomUUID assembles its string from 16 byte-to-hex pieces.
 */
export function randomUuidV4(): string {
  const h = randomHexId(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${VARIANT[parseInt(h[16], 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
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
