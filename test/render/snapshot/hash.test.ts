import { describe, expect, test } from '@jest/globals';
import { canonicalJson, contentHash } from '../../../src/render/hash.js';

describe('canonical JSON and content hash', () => {
  test('key order does not matter, content does', () => {
    const a = { b: 1, a: [1, { y: 'x', x: null }], c: undefined };
    const b = { a: [1, { x: null, y: 'x' }], b: 1 };
    expect(canonicalJson(a)).toBe('{"a":[1,{"x":null,"y":"x"}],"b":1}');
    expect(contentHash(a)).toBe(contentHash(b));
    expect(contentHash(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(contentHash({ ...b, b: 2 })).not.toBe(contentHash(b));
  });

  test('undefined array items are null and strings are escaped', () => {
    expect(canonicalJson([undefined, 'a"b', 1.5, true])).toBe('[null,"a\\"b",1.5,true]');
  });

  test('a memo returns the same text and is reused by identity', () => {
    const shared = { z: 1, a: 2 };
    const memo = new WeakMap<object, string>();
    const first = canonicalJson({ list: [shared, shared] }, memo);
    expect(first).toBe('{"list":[{"a":2,"z":1},{"a":2,"z":1}]}');
    expect(memo.get(shared)).toBe('{"a":2,"z":1}');
    expect(canonicalJson({ list: [shared, shared] }, memo)).toBe(first);
  });
});

describe('unified diff for golden failures', () => {
  test('shows removed then added lines with context and hunk ranges', async () => {
    const { unifiedDiff } = await import('./unified-diff.js');
    const expected = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].join('\n');
    const actual = ['a', 'b', 'c', 'd', 'E', 'f', 'g', 'h', 'i', 'j', 'k'].join('\n');
    expect(unifiedDiff(expected, actual, 'x.out.yaml', 'rendered', 1)).toBe(
      ['--- x.out.yaml', '+++ rendered', '@@ -4,3 +4,3 @@', ' d', '-e', '+E', ' f', '@@ -10,1 +10,2 @@', ' j', '+k'].join('\n'),
    );
    expect(unifiedDiff('same', 'same', 'a', 'b')).toBe('--- a\n+++ b');
  });
});
