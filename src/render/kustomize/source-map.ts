import type { SourceRef } from '../../mesh/object.js';
import { isObject, type Json } from './resource.js';

const SEGMENT = /\.([^.[]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]/y;

/** Splits a field path (`spec.http[0]["a.b"]`) into segments. */
export function splitFieldPath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  const head = /^[^.[]+/.exec(path);
  let i = 0;
  if (head) {
    out.push(head[0]);
    i = head[0].length;
  }
  while (i < path.length) {
    SEGMENT.lastIndex = i;
    const m = SEGMENT.exec(path);
    if (!m) return out;
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(JSON.parse(`"${m[3]}"`) as string);
    i = SEGMENT.lastIndex;
  }
  return out;
}

const MISSING = Symbol('missing');
/** A patch's own identity fields only find its target; they never become the target's values. */
const IDENTITY_PATHS = new Set(['apiVersion', 'kind', 'metadata.name', 'metadata.namespace']);

function valueAt(doc: Json, path: string): Json | typeof MISSING {
  let node: Json = doc;
  for (const seg of splitFieldPath(path)) {
    if (typeof seg === 'number' ? Array.isArray(node) && seg < node.length : isObject(node) && seg in node) {
      node = (node as Record<string | number, Json>)[seg];
    } else return MISSING;
  }
  return node;
}

function equal(a: Json | typeof MISSING, b: Json | typeof MISSING): boolean {
  if (a === b) return true;
  if (a === MISSING || b === MISSING || typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => equal((a as Record<string, Json>)[k], (b as Record<string, Json>)[k] ?? MISSING));
}

/** True when `path` is `root` itself (if `inclusive`) or lies below it. */
function isUnder(path: string, root: string, inclusive: boolean): boolean {
  if (root === '') return inclusive || path !== '';
  if (path === root) return inclusive;
  return path.startsWith(root) && (path[root.length] === '.' || path[root.length] === '[');
}

/**
 * Where a patch may have changed values: for each root, the values at or below it (`inclusive`) or
 * strictly below it. Every other position is unchanged by construction and kept without comparing.
 */
export interface ChangedRoots {
  roots: string[];
  inclusive: boolean;
}

/** Leaf paths of a strategic-merge patch: scalars, lists and nulls (maps merge, so they are not leaves). */
export function patchLeaves(patch: Json, path = ''): string[] {
  if (!isObject(patch)) return [path];
  const out: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch') return [path];
    out.push(...patchLeaves(value, childKey(path, key)));
  }
  return out;
}

function childKey(parent: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key) ? (parent === '' ? key : `${parent}.${key}`) : `${parent}[${JSON.stringify(key)}]`;
}

/**
 * Positions after a patch: an original position stays where its value is unchanged (or still a mapping);
 * a position from the patch is taken where the result holds the patch's value. A field whose origin is
 * ambiguous has no entry, so diagnostics fall back to its nearest ancestor: coarse, never misleading.
 */
export function rebaseSources(
  before: Json,
  after: Json,
  oldSources: Record<string, SourceRef>,
  changed: ChangedRoots,
  patchDoc?: Json,
  patchSources?: Record<string, SourceRef>,
): Record<string, SourceRef> {
  const out: Record<string, SourceRef> = {};
  for (const [path, ref] of Object.entries(oldSources)) {
    if (!changed.roots.some((root) => isUnder(path, root, changed.inclusive))) {
      out[path] = ref;
      continue;
    }
    const was = valueAt(before, path);
    const now = valueAt(after, path);
    if (equal(was, now) || (isObject(was as Json) && isObject(now as Json) && !/\]$/.test(path))) out[path] = ref;
  }
  if (patchDoc !== undefined && patchSources) {
    for (const [path, ref] of Object.entries(patchSources)) {
      if (/#(block|value)$/.test(path) || IDENTITY_PATHS.has(path)) continue;
      const now = valueAt(after, path);
      if (now !== MISSING && !isObject(now) && equal(valueAt(patchDoc, path), now)) out[path] = ref;
      else if (now !== MISSING && isObject(now) && out[path] === undefined && valueAt(patchDoc, path) !== MISSING) out[path] = ref;
    }
  }
  return out;
}
