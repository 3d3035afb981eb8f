import type { HeaderOps } from '../../mesh/snapshot.js';

/** Header operations compiled once per snapshot: names lowercased, pairs flattened for indexed loops. */
export interface CompiledHeaderOps {
  remove: string[];
  set: Array<[string, string]>;
  add: Array<[string, string]>;
}

export type MutableHeaders = Record<string, string | string[] | undefined>;

export function compileHeaderOps(ops: HeaderOps | undefined): CompiledHeaderOps | undefined {
  if (!ops) return undefined;
  const lower = (o?: Record<string, string>): Array<[string, string]> =>
    Object.entries(o ?? {}).map(([k, v]) => [k.toLowerCase(), v]);
  const compiled: CompiledHeaderOps = {
    remove: (ops.remove ?? []).map((h) => h.toLowerCase()),
    set: lower(ops.set),
    add: lower(ops.add),
  };
  if (compiled.remove.length + compiled.set.length + compiled.add.length === 0) return undefined;
  return compiled;
}

/**
 * Applies ops in Envoy's order: remove first, then set (overwrite), then add (append to an existing
 * value, comma-joined as HTTP/1 folds repeated headers).
 */
export function applyHeaderOps(headers: MutableHeaders, ops: CompiledHeaderOps | undefined): void {
  if (!ops) return;
  for (let i = 0; i < ops.remove.length; i++) delete headers[ops.remove[i]];
  for (let i = 0; i < ops.set.length; i++) headers[ops.set[i][0]] = ops.set[i][1];
  for (let i = 0; i < ops.add.length; i++) {
    const [name, value] = ops.add[i];
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) headers[name] = name === 'set-cookie' ? [...existing, value] : `${existing.join(', ')}, ${value}`;
    else headers[name] = name === 'set-cookie' ? [existing, value] : `${existing}, ${value}`;
  }
}
