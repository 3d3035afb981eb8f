/**
 * Field paths name a value inside an object: `spec.http[0].route[1].weight`. Keys that are not plain
 * identifiers are quoted: `metadata.labels["app.kubernetes.io/name"]`. Loader, validators and ajv
 * error mapping all build paths here so a path from one always finds the position recorded by another.
 */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export type PathSegment = string | number;

export function childPath(parent: string, key: PathSegment): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (PLAIN_KEY.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

export function joinPath(segments: readonly PathSegment[]): string {
  let path = '';
  for (const segment of segments) path = childPath(path, segment);
  return path;
}

/** Converts an ajv `instancePath` (JSON pointer, e.g. `/spec/http/0/route`) to a field path. */
export function pointerToPath(pointer: string, base = ''): string {
  if (pointer === '') return base;
  let path = base;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = childPath(path, /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : key);
  }
  return path;
}

const LAST_SEGMENT = /(\[\d+\]|\["(?:[^"\\]|\\.)*"\]|\.[^.[]+)$/;

/** The path one level up, or `undefined` at the root. */
export function parentPath(path: string): string | undefined {
  if (path === '') return undefined;
  const match = LAST_SEGMENT.exec(path);
  if (!match) return '';
  return path.slice(0, path.length - match[0].length);
}
