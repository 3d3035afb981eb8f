import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const BATCH = 128;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const randomBytes = Buffer.allocUnsafe(BATCH * 16);
const text = Buffer.allocUnsafe(BATCH * 36);
let batch = '';
let at = 0;

/** Formats BATCH random UUIDs v4 (RFC 9562 layout) into `batch`, one string for all of them. */
function refill(): void {
  randomFillSync(randomBytes);
  let o = 0;
  for (let i = 0; i < BATCH; i++) {
    const r = i * 16;
    randomBytes[r + 6] = (randomBytes[r + 6] & 0x0f) | 0x40; // version 4
    randomBytes[r + 8] = (randomBytes[r + 8] & 0x3f) | 0x80; // variant 10
    for (let b = 0; b < 16; b++) {
      if (b === 4 || b === 6 || b === 8 || b === 10) text[o++] = 45; // '-'
      const v = randomBytes[r + b];
      text[o++] = HEX[v >> 4];
      text[o++] = HEX[v & 15];
    }
  }
  batch = text.toString('latin1');
  at = 0;
}

/**
 * A random UUID v4, sliced from a string of 128 formatted at once: a request pays one small
 * string, where crypto.randomUUID assembles each id from 16 byte-to-hex pieces (~0.5 KB of garbage).
 */
export function randomUuidV4(): string {
  if (at >= batch.length) refill();
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
