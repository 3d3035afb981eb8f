import { effectiveNamespace, metadataOf, originalId, resId, type KResource } from './resource.js';

/** A patch target as kustomize's `types.Selector`: each of group..namespace is an anchored regular expression. */
export interface TargetSelector {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
  annotationSelector?: string;
}

export const SELECTOR_FIELDS = ['group', 'version', 'kind', 'name', 'namespace', 'labelSelector', 'annotationSelector'] as const;

interface CompiledSelector {
  group?: RegExp;
  version?: RegExp;
  kind?: RegExp;
  name?: RegExp;
  namespace?: RegExp;
  labels?: LabelRequirement[];
  annotations?: LabelRequirement[];
}

/** Compiles a selector; throws Error naming the bad field (the caller adds file and line). */
export function compileSelector(sel: TargetSelector): CompiledSelector {
  const anchored = (field: string, value: string | undefined): RegExp | undefined => {
    if (value === undefined || value === '') return undefined;
    try {
      return new RegExp(`^(?:${value})$`);
    } catch (err) {
      throw new Error(`${field}: invalid regular expression ${JSON.stringify(value)}: ${(err as Error).message}`);
    }
  };
  return {
    group: anchored('group', sel.group),
    version: anchored('version', sel.version),
    kind: anchored('kind', sel.kind),
    name: anchored('name', sel.name),
    namespace: anchored('namespace', sel.namespace),
    labels: sel.labelSelector ? parseLabelSelector(sel.labelSelector, 'labelSelector') : undefined,
    annotations: sel.annotationSelector ? parseLabelSelector(sel.annotationSelector, 'annotationSelector') : undefined,
  };
}

/** kustomize's resWrangler.Select: name and namespace may match the original or the current id. */
export function selects(sel: CompiledSelector, res: KResource): boolean {
  const cur = resId(res);
  const org = originalId(res);
  if (sel.namespace) {
    const orgNs = effectiveNamespace(cur.kind, org.namespace);
    const curNs = effectiveNamespace(cur.kind, cur.namespace);
    if (!sel.namespace.test(orgNs) && !sel.namespace.test(curNs)) return false;
  }
  if (sel.name && !sel.name.test(org.name) && !sel.name.test(cur.name)) return false;
  if (sel.group && !sel.group.test(cur.group)) return false;
  if (sel.version && !sel.version.test(cur.version)) return false;
  if (sel.kind && !sel.kind.test(cur.kind)) return false;
  const meta = metadataOf(res.doc);
  if (sel.labels && !matchesRequirements(sel.labels, stringMap(meta.labels))) return false;
  if (sel.annotations && !matchesRequirements(sel.annotations, stringMap(meta.annotations))) return false;
  return true;
}

interface LabelRequirement {
  key: string;
  op: 'exists' | 'notexists' | 'in' | 'notin';
  values: string[];
}

/** Parses a Kubernetes label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`. */
export function parseLabelSelector(text: string, field = 'labelSelector'): LabelRequirement[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((raw) => {
    const part = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
      return { key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()).filter((v) => v !== '') };
    }
    if ((m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part))) {
      return { key: m[1], op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]] };
    }
    if ((m = /^!\s*([^\s!=(),]+)$/.exec(part))) return { key: m[1], op: 'notexists', values: [] };
    if ((m = /^([^\s!=(),]+)$/.exec(part))) return { key: m[1], op: 'exists', values: [] };
    throw new Error(`${field}: cannot parse ${JSON.stringify(part)} in ${JSON.stringify(text)}`);
  });
}

function matchesRequirements(reqs: LabelRequirement[], labels: Record<string, string>): boolean {
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && r.values.includes(labels[r.key]);
      case 'notin':
        return !has || !r.values.includes(labels[r.key]);
    }
  });
}

function stringMap(value: unknown): Record<string, string> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}
