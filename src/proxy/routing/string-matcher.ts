import type { StringMatcher } from '../../mesh/snapshot.js';

/** A precompiled string test; `undefined` means the value is absent. */
export type CompiledMatcher = (value: string | undefined) => boolean;

/**
 * Compiles an Envoy-style RE2 regex into a full-match JS RegExp (Envoy's safe_regex matches the whole
 * value: `\d+$` matches "123", not "a123"). RE2's `(?P<name>` group syntax is translated.
 */
export function compileFullRegex(source: string, flags = ''): RegExp {
  const translated = source.replace(/\(\?P</g, '(?<');
  return new RegExp(`^(?:${translated})$`, flags);
}

/** Compiles one StringMatcher once per snapshot; throws on an invalid regex (caught at apply time). */
export function compileStringMatcher(m: StringMatcher, ignoreCase = false): CompiledMatcher {
  if ('present' in m) return (v) => v !== undefined;
  if ('exact' in m) {
    if (ignoreCase) {
      const want = m.exact.toLowerCase();
      return (v) => v !== undefined && v.length === want.length && v.toLowerCase() === want;
    }
    const want = m.exact;
    return (v) => v === want;
  }
  if ('prefix' in m) {
    if (ignoreCase) {
      const want = m.prefix.toLowerCase();
      return (v) => v !== undefined && v.length >= want.length && v.slice(0, want.length).toLowerCase() === want;
    }
    const want = m.prefix;
    return (v) => v !== undefined && v.startsWith(want);
  }
  if ('regex' in m) {
    const re = compileFullRegex(m.regex);
    return (v) => v !== undefined && re.test(v);
  }
  throw new Error(`unknown string matcher ${JSON.stringify(m)}`);
}
