import { RE2JS } from 're2js';
import type { StringMatcher } from '../../mesh/snapshot.js';

/** A precompiled string test; `undefined` means the value is absent. */
export type CompiledMatcher = (value: string | undefined) => boolean;

export interface FullMatchRegex {
  test(value: string): boolean;
}

/** Splits RE2's leading inline flags (`(?i)`, `(?s)`, …), which JS RegExp has no syntax for. */
function jsFlags(source: string): { body: string; flags: string } {
  const translated = source.replace(/\(\?P</g, '(?<');
  const m = /^\(\?([ims]+)\)/.exec(translated);
  return m ? { body: translated.slice(m[0].length), flags: [...new Set(m[1])].join('') } : { body: translated, flags: '' };
}

/**
 * Compiles an Envoy-style RE2 regex for a full match (Envoy's safe_regex matches the whole value:
 * `\d+$` matches "123", not "a123"). JS RegExp is used when it accepts the pattern (fast); RE2
 * syntax it does not know falls back to re2js, so every pattern the schema admits compiles.
 */
export function compileFullRegex(source: string): FullMatchRegex {
  const { body, flags } = jsFlags(source);
  try {
    return new RegExp(`^(?:${body})$`, flags);
  } catch {
    const p = RE2JS.compile(source);
    return { test: (v) => p.matches(v) };
  }
}

/** `uriRegexRewrite`: replaces every match of `match` in the path, `\1` being capture group 1. */
export function compileRegexRewrite(match: string, rewrite: string): (path: string) => string {
  const { body, flags } = jsFlags(match);
  let re: RegExp | undefined;
  try {
    re = new RegExp(body, `g${flags}`);
  } catch {
    re = undefined;
  }
  if (re) {
    const js = rewrite.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
    const r = re;
    return (path) => path.replace(r, js);
  }
  const p = RE2JS.compile(match);
  const re2 = rewrite.replace(/\$/g, '\\$').replace(/\\(\d)/g, '$$$1');
  return (path) => p.matcher(path).replaceAll(re2);
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
