import { describe, expect, it } from '@jest/globals';
import { ensureRequestId, randomUuidV4 } from '../../../src/proxy/telemetry/request-id.js';

describe('x-request-id from the batched UUID pool', () => {
  it('hands out RFC 9562 version-4 UUIDs, all different, across many batches', () => {
    const seen = new Set<string>();
    const variants = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = randomUuidV4();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
      variants.add(id[19]);
    }
    expect(seen.size).toBe(5000);
    expect([...variants].sort()).toEqual(['8', '9', 'a', 'b']);
  });

  it('sets a generated id when the header is absent or empty, and keeps a given one', () => {
    const absent: Record<string, string | string[] | undefined> = {};
    const id = ensureRequestId(absent);
    expect(absent['x-request-id']).toBe(id);
    const empty: Record<string, string | string[] | undefined> = { 'x-request-id': '' };
    expect(ensureRequestId(empty)).not.toBe('');
    const given: Record<string, string | string[] | undefined> = { 'x-request-id': ['abc', 'def'] };
    expect(ensureRequestId(given)).toBe('abc');
    expect(given['x-request-id']).toBe('abc');
  });
});
