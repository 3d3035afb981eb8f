/**
 * Random hex ids for trace and span ids, drawn from a pooled buffer so a request costs one slice
 * of an already-filled buffer instead of a crypto call.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

function take(bytes: number): string {
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

const ZERO_16 = '0'.repeat(16);
const ZERO_32 = '0'.repeat(32);

/** `bytes` random bytes as lower-case hex, never all zeros (an invalid id in W3C and B3). */
export function randomHexId(bytes: 8 | 16): string {
  const zero = bytes === 8 ? ZERO_16 : ZERO_32;
  let id = take(bytes);
  while (id === zero) id = take(bytes);
  return id;
}
