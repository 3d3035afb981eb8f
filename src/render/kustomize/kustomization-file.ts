import { childPath } from '../../mesh/field-path.js';
import type { Diagnostic, SourceRef } from '../../mesh/object.js';
import { diagnosticAt, RenderError } from './errors.js';
import { isObject } from './resource.js';
import { SELECTOR_FIELDS, type TargetSelector } from './selector.js';
import { parseYamlWithSources } from './yaml-source.js';

/** File names kustomize recognises as a kustomization, in its order of preference. */
export const KUSTOMIZATION_FILE_NAMES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'] as const;

/** Every kustomization field this build implements. Anything else is refused with its file and line. */
export const SUPPORTED_FIELDS = [
  'apiVersion', 'kind', 'metadata', 'resources', 'bases', 'namespace', 'namePrefix', 'nameSuffix',
  'commonLabels', 'labels', 'commonAnnotations', 'patches', 'patchesStrategicMerge', 'patchesJson6902', 'sortOptions',
] as const;

/** A string value of the kustomization with its position. */
export interface Located<T> {
  value: T;
  at: SourceRef;
  /** Field path inside the kustomization file, e.g. `patches[1].path`. */
  field: string;
  /** Position of the value itself (for an inline patch: its first character or block indicator). */
  valueAt: SourceRef;
  /** True when the string was a block scalar (`|`), whose content starts on the next line. */
  block: boolean;
}

export interface LabelsEntry {
  pairs: Record<string, string>;
  includeSelectors: boolean;
  includeTemplates: boolean;
  at: SourceRef;
}

export interface PatchEntry {
  /** `patches`, `patchesStrategicMerge` or `patchesJson6902`. */
  origin: 'patches' | 'patchesStrategicMerge' | 'patchesJson6902';
  path?: Located<string>;
  patch?: Located<string>;
  target?: TargetSelector;
  targetAt?: SourceRef;
  field: string;
  at: SourceRef;
}

export interface Kustomization {
  file: string;
  dir: string;
  /** The kustomization file's text (for positions of inline patches). */
  text: string;
  resources: Array<Located<string>>;
  namespace?: Located<string>;
  namePrefix?: Located<string>;
  nameSuffix?: Located<string>;
  commonLabels?: { value: Record<string, string>; at: SourceRef; field: string };
  labels: LabelsEntry[];
  commonAnnotations?: { value: Record<string, string>; at: SourceRef; field: string };
  patchesStrategicMerge: PatchEntry[];
  patches: PatchEntry[];
  patchesJson6902: PatchEntry[];
  /** Deprecated fields in use (kustomize warns about them too). */
  warnings: Diagnostic[];
}

/** Fields kustomize v5 still accepts but warns about, and what replaces them. */
const DEPRECATED: Record<string, string> = {
  commonLabels: 'labels',
  patchesStrategicMerge: 'patches',
  patchesJson6902: 'patches',
  bases: 'resources',
};

/** Parses and checks a kustomization file; throws RenderError listing every problem (never only the first). */
export function parseKustomization(text: string, file: string, dir: string): Kustomization {
  const docs = parseYamlWithSources(text, { file });
  const problems: Diagnostic[] = [];
  const k: Kustomization = {
    file, dir, text, resources: [], labels: [], patchesStrategicMerge: [], patches: [], patchesJson6902: [], warnings: [],
  };
  if (docs.length === 0) return k;
  if (docs.length > 1) {
    throw RenderError.at('InvalidField', docs[1].source, 'a kustomization file holds exactly one YAML document');
  }
  const doc = docs[0];
  if (!isObject(doc.value)) throw RenderError.at('InvalidField', doc.source, 'a kustomization must be a mapping');
  const root = doc.value as Record<string, unknown>;
  const at = (path: string): SourceRef => doc.fieldSources[path] ?? doc.source;
  const fail = (path: string, message: string, code: 'InvalidField' | 'UnsupportedField' = 'InvalidField'): void => {
    problems.push({ ...diagnosticAt({ ...at(path), field: path || undefined, kind: 'Kustomization' }, message), ...({ code } as object) });
  };
  const str = (path: string, value: unknown): Located<string> | undefined => {
    if (typeof value !== 'string') {
      fail(path, `must be a string, not ${describe(value)}`);
      return undefined;
    }
    const blockAt = doc.fieldSources[`${path}#block`];
    const valueAt = blockAt ?? doc.fieldSources[`${path}#value`] ?? at(path);
    return { value, at: at(path), field: path, valueAt, block: blockAt !== undefined };
  };
  const stringMap = (path: string, value: unknown): Record<string, string> | undefined => {
    if (!isObject(value)) {
      fail(path, `must be a mapping of strings, not ${describe(value)}`);
      return undefined;
    }
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(value)) {
      if (typeof v !== 'string') fail(childPath(path, key), `value must be a string (quote it), not ${describe(v)}`);
      else out[key] = v;
    }
    return out;
  };
  const list = (path: string, value: unknown): unknown[] => {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value)) {
      fail(path, `must be a list, not ${describe(value)}`);
      return [];
    }
    return value;
  };

  for (const key of Object.keys(root)) {
    if (!(SUPPORTED_FIELDS as readonly string[]).includes(key)) {
      fail(key, `kustomization field "${key}" is not supported by Trellis's kustomize build (supported: ${SUPPORTED_FIELDS.filter((f) => f !== 'metadata').join(', ')})`, 'UnsupportedField');
    }
  }
  for (const [field, replacement] of Object.entries(DEPRECATED)) {
    if (root[field] !== undefined) {
      k.warnings.push(diagnosticAt({ ...at(field), kind: 'Kustomization', field }, `"${field}" is deprecated in kustomize v5; use "${replacement}" instead`, 'warning'));
    }
  }
  if (root.apiVersion !== undefined && root.apiVersion !== 'kustomize.config.k8s.io/v1beta1') {
    fail('apiVersion', `must be kustomize.config.k8s.io/v1beta1, not ${JSON.stringify(root.apiVersion)}`);
  }
  if (root.kind !== undefined && root.kind !== 'Kustomization') {
    const what = root.kind === 'Component' ? 'kustomize Components are not supported' : `must be Kustomization, not ${JSON.stringify(root.kind)}`;
    fail('kind', what, root.kind === 'Component' ? 'UnsupportedField' : 'InvalidField');
  }
  if (root.sortOptions !== undefined) {
    const order = isObject(root.sortOptions) ? root.sortOptions.order : undefined;
    if (order !== 'legacy' || Object.keys(root.sortOptions as object).length !== 1) {
      fail('sortOptions', 'only "sortOptions: {order: legacy}" (the default) is supported', 'UnsupportedField');
    }
  }

  for (const field of ['resources', 'bases'] as const) {
    list(field, root[field]).forEach((entry, i) => {
      const located = str(childPath(field, i), entry);
      if (located) k.resources.push(located);
    });
  }
  for (const field of ['namespace', 'namePrefix', 'nameSuffix'] as const) {
    if (root[field] !== undefined && root[field] !== null) k[field] = str(field, root[field]);
  }
  for (const field of ['commonLabels', 'commonAnnotations'] as const) {
    if (root[field] === undefined || root[field] === null) continue;
    const pairs = stringMap(field, root[field]);
    if (pairs) k[field] = { value: pairs, at: at(field), field };
  }
  list('labels', root.labels).forEach((entry, i) => {
    const path = childPath('labels', i);
    if (!isObject(entry)) return fail(path, `must be a mapping with "pairs", not ${describe(entry)}`);
    for (const key of Object.keys(entry)) {
      if (key === 'fields') fail(childPath(path, key), 'labels[].fields (custom field specs) is not supported', 'UnsupportedField');
      else if (!['pairs', 'includeSelectors', 'includeTemplates'].includes(key)) fail(childPath(path, key), `unknown labels field "${key}"`);
    }
    const pairs = stringMap(childPath(path, 'pairs'), entry.pairs ?? {});
    for (const flag of ['includeSelectors', 'includeTemplates'] as const) {
      if (entry[flag] !== undefined && typeof entry[flag] !== 'boolean') fail(childPath(path, flag), 'must be true or false');
    }
    if (pairs) {
      k.labels.push({ pairs, includeSelectors: entry.includeSelectors === true, includeTemplates: entry.includeTemplates === true, at: at(path) });
    }
  });

  list('patchesStrategicMerge', root.patchesStrategicMerge).forEach((entry, i) => {
    const path = childPath('patchesStrategicMerge', i);
    const located = str(path, entry);
    if (!located) return;
    // kustomize reads a value with a line break as an inline patch, anything else as a file path.
    const inline = located.value.includes('\n');
    k.patchesStrategicMerge.push({ origin: 'patchesStrategicMerge', field: path, at: located.at, ...(inline ? { patch: located } : { path: located }) });
  });
  for (const origin of ['patches', 'patchesJson6902'] as const) {
    list(origin, root[origin]).forEach((entry, i) => {
      const path = childPath(origin, i);
      if (!isObject(entry)) return fail(path, `must be a mapping with "path" or "patch", not ${describe(entry)}`);
      const allowed = origin === 'patches' ? ['path', 'patch', 'target', 'options'] : ['path', 'patch', 'target'];
      for (const key of Object.keys(entry)) if (!allowed.includes(key)) fail(childPath(path, key), `unknown ${origin} field "${key}"`, 'UnsupportedField');
      const p: PatchEntry = { origin, field: path, at: at(path) };
      if (entry.path !== undefined) p.path = str(childPath(path, 'path'), entry.path);
      if (entry.patch !== undefined) p.patch = str(childPath(path, 'patch'), entry.patch);
      if ((entry.path === undefined) === (entry.patch === undefined)) fail(path, 'needs exactly one of "path" and "patch"');
      if (entry.options !== undefined) {
        const options = isObject(entry.options) ? entry.options : {};
        for (const [key, value] of Object.entries(options)) {
          if (value === true || !['allowNameChange', 'allowKindChange'].includes(key)) {
            fail(childPath(childPath(path, 'options'), key), `patch option "${key}" is not supported`, 'UnsupportedField');
          }
        }
      }
      if (entry.target !== undefined) {
        const targetPath = childPath(path, 'target');
        if (!isObject(entry.target)) fail(targetPath, `must be a mapping, not ${describe(entry.target)}`);
        else {
          const target: TargetSelector = {};
          for (const [key, value] of Object.entries(entry.target)) {
            if (!(SELECTOR_FIELDS as readonly string[]).includes(key)) fail(childPath(targetPath, key), `unknown target field "${key}" (known: ${SELECTOR_FIELDS.join(', ')})`);
            else if (typeof value !== 'string') fail(childPath(targetPath, key), `must be a string, not ${describe(value)}`);
            else target[key as keyof TargetSelector] = value;
          }
          p.target = target;
          p.targetAt = at(targetPath);
        }
      } else if (origin === 'patchesJson6902') {
        fail(path, 'patchesJson6902 entries need a target');
      }
      k[origin].push(p);
    });
  }

  if (problems.length > 0) {
    const unsupportedOnly = problems.every((p) => (p as { code?: string }).code === 'UnsupportedField');
    throw new RenderError(unsupportedOnly ? 'UnsupportedField' : 'InvalidField', problems.map(stripCode));
  }
  return k;
}

function stripCode(d: Diagnostic): Diagnostic {
  const { code: _code, ...rest } = d as Diagnostic & { code?: string };
  void _code;
  return rest;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

