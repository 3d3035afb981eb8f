/**
 * Istio AuthorizationPolicy string matching: exact, `prefix*`, `*suffix`, and `*` (any non-empty
 * value). Paths also take Envoy URI templates: `{*}` one segment, `{**}` any number of segments.
 */
export type ValueMatcher = (value: string | undefined) => boolean;

export function compileStringMatch(pattern: string, options: { ignoreCase?: boolean } = {}): ValueMatcher {
  const fold = options.ignoreCase ? (s: string) => s.toLowerCase() : (s: string) => s;
  if (pattern === '*') return (value) => value !== undefined && value !== '';
  if (pattern.startsWith('*')) {
    const suffix = fold(pattern.slice(1));
    return (value) => value !== undefined && fold(value).endsWith(suffix);
  }
  if (pattern.endsWith('*')) {
    const prefix = fold(pattern.slice(0, -1));
    return (value) => value !== undefined && fold(value).startsWith(prefix);
  }
  const exact = fold(pattern);
  return (value) => value !== undefined && fold(value) === exact;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `/a/{*}/c`, `/a/{**}`: compiled to an anchored regex (segments never contain `/` for `{*}`). */
export function compilePathMatch(pattern: string): ValueMatcher {
  if (!pattern.includes('{*}') && !pattern.includes('{**}')) return compileStringMatch(pattern);
  const source = pattern
    .split(/(\{\*\*\}|\{\*\})/)
    .map((part) => (part === '{**}' ? '.*' : part === '{*}' ? '[^/]+' : escapeRegex(part)))
    .join('');
  const regex = new RegExp(`^${source}$`);
  return (value) => value !== undefined && regex.test(value);
}

/** Matches a Host header: case-insensitive; a pattern without a port also matches `host:port`. */
export function compileHostMatch(pattern: string): ValueMatcher {
  const match = compileStringMatch(pattern, { ignoreCase: true });
  const patternHasPort = /:\d+$/.test(pattern);
  return (value) => {
    if (value === undefined) return false;
    if (match(value)) return true;
    if (patternHasPort) return false;
    const withoutPort = value.replace(/:\d+$/, '');
    return withoutPort !== value && match(withoutPort);
  };
}

export function anyOf(matchers: ValueMatcher[]): (value: string | undefined) => boolean {
  return (value) => matchers.some((matcher) => matcher(value));
}
