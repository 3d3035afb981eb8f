import { clone, isObject, type Json, type JsonObject } from './resource.js';

/**
 * API groups whose kinds kustomize knows from the Kubernetes OpenAPI schema. Only for these do lists merge
 * by a key; custom resources (every Istio kind) have no patch-merge keys, so a list in a patch replaces
 * the whole list, exactly as `kubectl kustomize` does for CRDs.
 */
const BUILTIN_GROUPS = new Set(['', 'apps', 'batch', 'policy', 'autoscaling', 'networking.k8s.io', 'rbac.authorization.k8s.io']);

/** Patch-merge keys of the built-in types, by list field name; `ports` depends on where it sits. */
function mergeKeyFor(field: string, parentPath: string[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'volumes':
    case 'env':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'volumeDevices':
      return 'devicePath';
    case 'hostAliases':
      return 'ip';
    case 'ports': {
      const parent = parentPath[parentPath.length - 1];
      // A Service's ports (spec.ports) merge on `port`; a container's on `containerPort`.
      return parentPath.length === 1 && parent === 'spec' ? 'port' : 'containerPort';
    }
    default:
      return undefined;
  }
}

export class PatchError extends Error {
  constructor(message: string, readonly path: string[] = []) {
    super(message);
  }
}

/**
 * Applies a strategic-merge patch to a document and returns the result (inputs are not modified).
 * Maps merge recursively; `null` deletes a field; `$patch: delete` removes a map (or a keyed list element)
 * and `$patch: replace` replaces it; lists replace unless the kind is built-in and the list has a merge key.
 */
export function applyStrategicMerge(target: JsonObject, patch: JsonObject, apiGroup: string): JsonObject {
  const builtin = BUILTIN_GROUPS.has(apiGroup);
  const merged = mergeMap(clone(target), patch, [], builtin);
  return merged ?? {};
}

function mergeMap(dest: JsonObject, patch: JsonObject, path: string[], builtin: boolean): JsonObject | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return stripDirectives(withoutKey(patch, '$patch')) as JsonObject;
  if (directive !== undefined) throw new PatchError(`unsupported $patch directive ${JSON.stringify(directive)}`, path);
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) throw new PatchError(`strategic-merge directive ${key} is not supported`, [...path, key]);
    const here = [...path, key];
    if (value === null) {
      delete dest[key];
      continue;
    }
    const current = dest[key];
    if (isObject(value)) {
      if (isObject(current)) {
        const merged = mergeMap(current, value, here, builtin);
        if (merged === undefined) delete dest[key];
        else dest[key] = merged;
      } else if (value.$patch === 'delete') {
        delete dest[key];
      } else {
        dest[key] = stripDirectives(value);
      }
      continue;
    }
    if (Array.isArray(value)) {
      const mergeKey = builtin ? mergeKeyFor(key, path) : undefined;
      dest[key] = mergeKey && Array.isArray(current) ? mergeList(current, value, mergeKey, here, builtin) : (stripDirectives(value) as Json[]);
      continue;
    }
    dest[key] = value;
  }
  return dest;
}

function mergeList(dest: Json[], patch: Json[], mergeKey: string, path: string[], builtin: boolean): Json[] {
  if (patch.some((item) => isObject(item) && item.$patch === 'replace' && Object.keys(item).length === 1)) {
    return patch.filter((item) => !(isObject(item) && item.$patch === 'replace')).map(stripDirectives);
  }
  const keyOf = (item: Json): Json | undefined => (isObject(item) ? item[mergeKey] : undefined);
  const merged = [...dest];
  for (const item of patch) {
    if (!isObject(item) || item[mergeKey] === undefined) {
      throw new PatchError(`list element has no merge key "${mergeKey}"`, path);
    }
    const index = merged.findIndex((el) => keyOf(el) === item[mergeKey]);
    if (index < 0) {
      if (item.$patch !== 'delete') merged.push(stripDirectives(item));
      continue;
    }
    const result = mergeMap(merged[index] as JsonObject, item, [...path, String(index)], builtin);
    if (result === undefined) merged.splice(index, 1);
    else merged[index] = result;
  }
  return normalizeOrder(merged, dest, patch, keyOf);
}

/**
 * The element order of a strategic merge (apimachinery's normalizeElementOrder): elements named by the patch
 * in patch order, the others in their original order, interleaved where the original order relates them.
 */
function normalizeOrder(merged: Json[], original: Json[], patch: Json[], keyOf: (item: Json) => Json | undefined): Json[] {
  const patchKeys = patch.map(keyOf);
  const originalKeys = original.map(keyOf);
  const patchItems = merged.filter((el) => patchKeys.includes(keyOf(el)));
  patchItems.sort((a, b) => patchKeys.indexOf(keyOf(a)) - patchKeys.indexOf(keyOf(b)));
  const serverOnly = merged.filter((el) => !patchKeys.includes(keyOf(el)));
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < patchItems.length) {
    if (j >= patchItems.length) out.push(serverOnly[i++]);
    else if (i >= serverOnly.length) out.push(patchItems[j++]);
    else {
      const li = originalKeys.indexOf(keyOf(serverOnly[i]));
      const ri = originalKeys.indexOf(keyOf(patchItems[j]));
      if (li >= 0 && ri >= 0 && li < ri) out.push(serverOnly[i++]);
      else out.push(patchItems[j++]);
    }
  }
  return out;
}

function withoutKey(obj: JsonObject, key: string): JsonObject {
  const { [key]: _dropped, ...rest } = obj;
  void _dropped;
  return rest;
}

/** A value copied from a patch: nulls (deletions of nothing) and `$patch` directives removed. */
function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$patch' || v === null) continue;
    out[key] = stripDirectives(v);
  }
  return out;
}
