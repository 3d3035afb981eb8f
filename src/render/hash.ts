import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted by code unit, `undefined` members omitted (as JSON.stringify
 * does), `undefined` array items written as `null`. Equal content ⇒ equal text, whatever the key order.
 *
 * `memo` caches the text of objects by identity. Rendering shares immutable resource objects
 * (virtual hosts, clusters) across many snapshots, so hashing a snapshot re-serialises only what
 * is new. Only pass a memo for objects that are never mutated after they are first serialised.
 */
export function canonicalJson(value: unknown, memo?: WeakMap<object, string>): string {
  if (value === null || typeof value !== 'object') {
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return 'null';
    if (typeof value === 'bigint') return value.toString();
    return JSON.stringify(value);
  }
  if (memo) {
    const cached = memo.get(value);
    if (cached !== undefined) return cached;
  }
  let text: string;
  if (Array.isArray(value)) {
    const parts = new Array<string>(value.length);
    for (let i = 0; i < value.length; i++) parts[i] = canonicalJson(value[i], memo);
    text = `[${parts.join(',')}]`;
  } else {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (keys.length > 1) keys.sort();
    const parts: string[] = [];
    for (let i = 0; i < keys.length; i++) {
      const member = record[keys[i]];
      if (member === undefined || typeof member === 'function' || typeof member === 'symbol') continue;
      parts.push(`"${escapeKey(keys[i])}":${canonicalJson(member, memo)}`);
    }
    text = `{${parts.join(',')}}`;
  }
  if (memo) memo.set(value, text);
  return text;
}

const PLAIN_KEY = /^[^"\\\u0000-\u001f\u007f-\uffff]*$/;

/** The inside of JSON.stringify(key), without the quotes (most keys need no escaping). */
function escapeKey(key: string): string {
  return PLAIN_KEY.test(key) ? key : JSON.stringify(key).slice(1, -1);
}

/** Length of every content hash Trellis prints or stores (hex characters of a sha256). */
export const CONTENT_HASH_LENGTH = 16;

export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, CONTENT_HASH_LENGTH);
}

/** sha256 of the canonical JSON of `value`, hex, first 16 characters. */
export function contentHash(value: unknown, memo?: WeakMap<object, string>): string {
  return hashText(canonicalJson(value, memo));
}
