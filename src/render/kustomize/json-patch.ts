import { clone, isObject, type Json } from './resource.js';
import { PatchError } from './strategic-merge.js';

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: Json;
}

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Checks the shape of an RFC 6902 patch (a list of operations); throws PatchError naming the operation index. */
export function parseJsonPatch(value: unknown): JsonPatchOperation[] {
  if (!Array.isArray(value)) throw new PatchError('a JSON 6902 patch must be a list of operations');
  return value.map((raw, i) => {
    if (!isObject(raw)) throw new PatchError(`operation ${i} is not a mapping`, [String(i)]);
    if (typeof raw.op !== 'string' || !OPS.has(raw.op)) throw new PatchError(`operation ${i}: unknown op ${JSON.stringify(raw.op)}`, [String(i), 'op']);
    if (typeof raw.path !== 'string') throw new PatchError(`operation ${i}: missing path`, [String(i), 'path']);
    if ((raw.op === 'move' || raw.op === 'copy') && typeof raw.from !== 'string') {
      throw new PatchError(`operation ${i}: ${raw.op} needs "from"`, [String(i), 'from']);
    }
    if ((raw.op === 'add' || raw.op === 'replace' || raw.op === 'test') && !('value' in raw)) {
      throw new PatchError(`operation ${i}: ${raw.op} needs "value"`, [String(i), 'value']);
    }
    return raw as unknown as JsonPatchOperation;
  });
}

/** Applies RFC 6902 operations in order; returns a new document. Throws PatchError with the failing operation's index. */
export function applyJsonPatch(doc: Json, ops: JsonPatchOperation[]): Json {
  let root = clone(doc);
  ops.forEach((op, i) => {
    try {
      root = applyOne(root, op);
    } catch (err) {
      throw new PatchError(`operation ${i} (${op.op} ${op.path}): ${(err as Error).message}`, [String(i)]);
    }
  });
  return root;
}

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`path ${JSON.stringify(pointer)} must start with "/"`);
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyOne(root: Json, op: JsonPatchOperation): Json {
  const path = parsePointer(op.path);
  switch (op.op) {
    case 'add':
      return add(root, path, clone(op.value as Json));
    case 'remove':
      return remove(root, path).root;
    case 'replace':
      get(root, path);
      return add(remove(root, path).root, path, clone(op.value as Json));
    case 'move': {
      const from = parsePointer(op.from!);
      if (path.length > from.length && from.every((seg, i) => seg === path[i])) throw new Error('cannot move a value into itself');
      const taken = remove(root, from);
      return add(taken.root, path, taken.value);
    }
    case 'copy':
      return add(root, path, clone(get(root, parsePointer(op.from!))));
    case 'test': {
      const actual = get(root, path);
      if (JSON.stringify(sortKeys(actual)) !== JSON.stringify(sortKeys(op.value as Json))) throw new Error('test failed: value differs');
      return root;
    }
  }
}

function get(root: Json, path: string[]): Json {
  let node: Json = root;
  for (const seg of path) {
    if (Array.isArray(node)) {
      const i = arrayIndex(seg, node.length, false);
      node = node[i];
    } else if (isObject(node) && seg in node) {
      node = node[seg];
    } else {
      throw new Error(`no value at /${path.join('/')}`);
    }
  }
  return node;
}

function add(root: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value;
  const parent = get(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : arrayIndex(last, parent.length, true);
    parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    parent[last] = value;
  } else {
    throw new Error(`parent of /${path.join('/')} is not a mapping or list`);
  }
  return root;
}

function remove(root: Json, path: string[]): { root: Json; value: Json } {
  if (path.length === 0) throw new Error('cannot remove the whole document');
  const parent = get(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (Array.isArray(parent)) {
    const i = arrayIndex(last, parent.length, false);
    const [value] = parent.splice(i, 1);
    return { root, value };
  }
  if (isObject(parent) && last in parent) {
    const value = parent[last];
    delete parent[last];
    return { root, value };
  }
  throw new Error(`no value at /${path.join('/')}`);
}

function arrayIndex(seg: string, length: number, allowEnd: boolean): number {
  if (!/^(0|[1-9][0-9]*)$/.test(seg)) throw new Error(`${JSON.stringify(seg)} is not a list index`);
  const i = Number(seg);
  if (i > length || (!allowEnd && i === length)) throw new Error(`index ${i} is out of range (list has ${length} elements)`);
  return i;
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
}
