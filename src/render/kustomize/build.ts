import { childPath, pointerToPath } from '../../mesh/field-path.js';
import { parseDocuments } from '../../mesh/load.js';
import type { Diagnostic, MeshObject } from '../../mesh/object.js';
import { joinRepoPath, normalizeRepoPath } from '../fs.js';
import type { RenderCache } from '../cache.js';
import type { RepoFileSystem } from '../types.js';
import { diagnosticAt, RenderError, type RenderErrorCode } from './errors.js';
import { applyJsonPatch, parseJsonPatch } from './json-patch.js';
import { KUSTOMIZATION_FILE_NAMES, parseKustomization, type Kustomization, type Located, type PatchEntry } from './kustomization-file.js';
import {
  allIds, describeId, effectiveNamespace, fromMeshObject, isObject, objectName, resId, toMeshObject,
  type Json, type JsonObject, type KResource,
} from './resource.js';
import { compileSelector, selects } from './selector.js';
import { sortLegacy } from './sort.js';
import { patchLeaves, rebaseSources } from './source-map.js';
import { applyStrategicMerge, PatchError } from './strategic-merge.js';
import { ANNOTATION_FIELD_SPECS, applyMapTransformer, applyNameAffixes, applyNamespace, labelFieldSpecs } from './transformers.js';
import { embeddedOrigin, parseYamlWithSources, type SourcedValue } from './yaml-source.js';

export interface KustomizeBuildResult {
  /** The objects `kustomize build` prints, in its (legacy) order, each with its source position. */
  objects: MeshObject[];
  /** Non-fatal findings: deprecated kustomization fields, YAML warnings in resource files. */
  warnings: Diagnostic[];
  /** Every kustomization directory the build read, the root first. */
  kustomizationDirs: string[];
  /** Every file the build read (kustomization files, resources, patches). */
  files: string[];
}

export interface BuildOptions {
  /** Parsed files are taken from (and added to) this cache: see src/render/cache.ts. */
  cache?: RenderCache;
}

interface BuildContext {
  fs: RepoFileSystem;
  cache?: RenderCache;
  warnings: Diagnostic[];
  dirs: string[];
  files: Set<string>;
}

/** `kustomize build DIR` (DIR repository-relative) over a RepoFileSystem. Throws RenderError with every problem found. */
export async function buildKustomization(fs: RepoFileSystem, dir: string, options: BuildOptions = {}): Promise<MeshObject[]> {
  return (await buildKustomizationDetailed(fs, dir, options)).objects;
}

export async function buildKustomizationDetailed(fs: RepoFileSystem, dir: string, options: BuildOptions = {}): Promise<KustomizeBuildResult> {
  const ctx: BuildContext = { fs, cache: options.cache, warnings: [], dirs: [], files: new Set() };
  const root = normalizeRepoPath(dir);
  const resources = await buildDir(ctx, root, []);
  for (const res of resources) dropEmptyMetadataMaps(res);
  return {
    objects: sortLegacy(resources).map(toMeshObject),
    warnings: ctx.warnings,
    kustomizationDirs: ctx.dirs,
    files: [...ctx.files],
  };
}

async function findKustomizationFile(fs: RepoFileSystem, dir: string): Promise<string> {
  if (!(await fs.isDirectory(dir))) {
    throw RenderError.at('NotFound', { file: dir || '.' }, `kustomization directory "${dir || '.'}" does not exist`);
  }
  const found: string[] = [];
  for (const name of KUSTOMIZATION_FILE_NAMES) {
    const file = dir === '' ? name : `${dir}/${name}`;
    if (await fs.exists(file)) found.push(file);
  }
  if (found.length === 0) {
    throw RenderError.at('NotFound', { file: dir || '.' }, `no kustomization file in "${dir || '.'}" (expected one of ${KUSTOMIZATION_FILE_NAMES.join(', ')})`);
  }
  if (found.length > 1) {
    throw RenderError.at('InvalidField', { file: found[1] }, `found more than one kustomization file in "${dir || '.'}": ${found.join(', ')}`);
  }
  return found[0];
}

async function buildDir(ctx: BuildContext, dir: string, stack: string[]): Promise<KResource[]> {
  const file = await findKustomizationFile(ctx.fs, dir);
  const text = await ctx.fs.readFile(file);
  const k = cached(ctx, 'kustomization', file, text, () => parseKustomization(text, file, dir));
  ctx.files.add(file);
  ctx.warnings.push(...k.warnings);
  if (!ctx.dirs.includes(dir)) ctx.dirs.push(dir);

  const errors: Diagnostic[] = [];
  const resources: KResource[] = [];
  for (const entry of k.resources) {
    try {
      resources.push(...(await loadResourceEntry(ctx, k, entry, [...stack, dir])));
    } catch (err) {
      errors.push(...(err instanceof RenderError ? err.diagnostics : [locatedDiagnostic(entry, (err as Error).message)]));
    }
  }
  if (errors.length === 0) errors.push(...duplicateIds(resources));
  if (errors.length > 0) throw new RenderError(codeOf(errors), errors);

  let current = resources;
  for (const patch of k.patchesStrategicMerge) current = await applyPatchEntry(ctx, k, patch, current, errors);
  for (const patch of k.patches) current = await applyPatchEntry(ctx, k, patch, current, errors);
  if (k.namespace) {
    applyNamespace(current, k.namespace.value);
    errors.push(...idConflicts(current, 'namespace', k.namespace));
  }
  if (k.namePrefix) {
    applyNameAffixes(current, k.namePrefix.value, '');
    errors.push(...idConflicts(current, 'namePrefix', k.namePrefix));
  }
  if (k.nameSuffix) {
    applyNameAffixes(current, '', k.nameSuffix.value);
    errors.push(...idConflicts(current, 'nameSuffix', k.nameSuffix));
  }
  if (k.commonLabels) applyMapTransformer(current, k.commonLabels.value, labelFieldSpecs({ selectors: true, templates: true }), k.commonLabels.at);
  for (const entry of k.labels) {
    applyMapTransformer(current, entry.pairs, labelFieldSpecs({ selectors: entry.includeSelectors, templates: entry.includeTemplates }), entry.at);
  }
  if (k.commonAnnotations) applyMapTransformer(current, k.commonAnnotations.value, ANNOTATION_FIELD_SPECS, k.commonAnnotations.at);
  for (const patch of k.patchesJson6902) current = await applyPatchEntry(ctx, k, patch, current, errors);
  if (errors.length > 0) throw new RenderError(codeOf(errors), errors);
  return current;
}

/** kustomize prints no empty `metadata.annotations` (its internal bookkeeping annotations leave none behind); empty labels stay. */
function dropEmptyMetadataMaps(res: KResource): void {
  const meta = res.doc.metadata;
  if (!isObject(meta)) return;
  const value = meta.annotations;
  if (isObject(value) && Object.keys(value).length === 0) delete meta.annotations;
}

function codeOf(errors: Diagnostic[]): RenderErrorCode {
  const codes = new Set(errors.map((e) => (e as Diagnostic & { code?: RenderErrorCode }).code).filter(Boolean));
  return codes.size === 1 ? [...codes][0]! : 'InvalidField';
}

/** A diagnostic at a kustomization entry, tagged with a code so the thrown RenderError gets a useful one. */
function locatedDiagnostic(entry: Located<string> | PatchEntry, message: string, code: RenderErrorCode = 'InvalidField'): Diagnostic {
  const d = diagnosticAt({ ...entry.at, kind: 'Kustomization', field: entry.field }, message);
  Object.defineProperty(d, 'code', { value: code, enumerable: false });
  return d;
}

/** Runs a filesystem step for a kustomization entry; an escape or a missing file is reported at the entry. */
async function atEntry<T>(entry: Located<string>, step: () => Promise<T> | T): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof RenderError && (err.code === 'PathEscape' || err.code === 'NotFound' || err.code === 'TooLarge')) {
      const inner = err.diagnostics[0].message;
      const message = inner.includes(JSON.stringify(entry.value)) ? inner : `"${entry.value}": ${inner}`;
      throw new RenderError(err.code, [locatedDiagnostic(entry, message, err.code)]);
    }
    throw err;
  }
}

async function loadResourceEntry(ctx: BuildContext, k: Kustomization, entry: Located<string>, stack: string[]): Promise<KResource[]> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry.value) || /^(github\.com|gitlab\.com|git@)/.test(entry.value)) {
    throw new RenderError('UnsupportedField', [locatedDiagnostic(entry, `remote resource "${entry.value}" is not supported: resources must be files or directories in the repository`, 'UnsupportedField')]);
  }
  const target = await atEntry(entry, () => joinRepoPath(k.dir, entry.value));
  if (await atEntry(entry, () => ctx.fs.isDirectory(target))) {
    if (stack.includes(target)) {
      throw new RenderError('Cycle', [locatedDiagnostic(entry, `cycle: "${target}" includes itself (${[...stack, target].join(' → ')})`, 'Cycle')]);
    }
    await atEntry(entry, () => findKustomizationFile(ctx.fs, target));
    return buildDir(ctx, target, stack);
  }
  if (!(await atEntry(entry, () => ctx.fs.exists(target)))) {
    throw new RenderError('NotFound', [locatedDiagnostic(entry, `resource "${entry.value}" not found (looked for ${target})`, 'NotFound')]);
  }
  checkLoadRestrictor(k, entry, target);
  const text = await atEntry(entry, () => ctx.fs.readFile(target));
  ctx.files.add(target);
  const parsed = cached(ctx, 'documents', target, text, () => parseDocuments(text, target));
  const fatal = parsed.diagnostics.filter((d) => d.severity === 'error');
  ctx.warnings.push(...parsed.diagnostics.filter((d) => d.severity !== 'error'));
  if (fatal.length > 0) throw new RenderError('YamlSyntax', fatal);
  return parsed.objects.map(fromMeshObject);
}

/** kustomize's LoadRestrictionsRootOnly: a file a kustomization reads must be in or below its directory. */
function checkLoadRestrictor(k: Kustomization, entry: Located<string>, target: string): void {
  if (k.dir === '' || target.startsWith(`${k.dir}/`)) return;
  throw new RenderError('PathEscape', [locatedDiagnostic(entry,
    `security: file "${target}" is not in or below the kustomization root "${k.dir}" (kustomize's load restrictor); ` +
    'move the file under that directory, or reference a directory that has its own kustomization.yaml', 'PathEscape')]);
}

/** kustomize refuses a transformation that gives two resources the same id. */
function idConflicts(resources: KResource[], field: string, entry: Located<string>): Diagnostic[] {
  return duplicateIds(resources).map((d) => {
    const out = locatedDiagnostic(entry, `${field} transformation produces an id conflict: ${d.kind} ${d.name} (${d.message.replace(/^may not add resource with an already registered id /, '')})`, 'DuplicateResource');
    return out;
  });
}

function duplicateIds(resources: KResource[]): Diagnostic[] {
  const seen = new Map<string, KResource>();
  const out: Diagnostic[] = [];
  for (const res of resources) {
    const id = resId(res);
    const key = `${id.group}|${id.version}|${id.kind}|${effectiveNamespace(id.kind, id.namespace)}|${id.name}`;
    const first = seen.get(key);
    if (first) {
      const firstAt = first.source ? `${first.source.file}:${first.source.line}` : 'another resource';
      const d = diagnosticAt({ ...(res.source ?? { file: '<unknown>' }), kind: id.kind, name: objectName(res) },
        `may not add resource with an already registered id ${describeId(id)} (first defined at ${firstAt})`);
      Object.defineProperty(d, 'code', { value: 'DuplicateResource', enumerable: false });
      out.push(d);
    } else seen.set(key, res);
  }
  return out;
}

interface LoadedPatch {
  docs: SourcedValue[];
  file: string;
}

async function loadPatch(ctx: BuildContext, k: Kustomization, entry: PatchEntry): Promise<LoadedPatch> {
  if (entry.path) {
    const ref = entry.path;
    const target = await atEntry(ref, () => joinRepoPath(k.dir, ref.value));
    if (!(await atEntry(ref, () => ctx.fs.exists(target)))) {
      throw new RenderError('NotFound', [locatedDiagnostic(ref, `patch file "${ref.value}" not found (looked for ${target})`, 'NotFound')]);
    }
    checkLoadRestrictor(k, ref, target);
    const text = await atEntry(ref, () => ctx.fs.readFile(target));
    ctx.files.add(target);
    return { docs: cached(ctx, 'patch', target, text, () => parseYamlWithSources(text, { file: target })), file: target };
  }
  const inline = entry.patch!;
  return { docs: parseYamlWithSources(inline.value, embeddedOrigin(inline.valueAt, k.text, inline.block)), file: k.file };
}

/** A parse through the cache when there is one (cached values are frozen: the build copies before it changes anything). */
function cached<T>(ctx: BuildContext, parser: string, file: string, text: string, parse: () => T): T {
  return ctx.cache ? ctx.cache.parsed(parser, file, text, parse) : parse();
}

async function applyPatchEntry(ctx: BuildContext, k: Kustomization, entry: PatchEntry, resources: KResource[], errors: Diagnostic[]): Promise<KResource[]> {
  let loaded: LoadedPatch;
  try {
    loaded = await loadPatch(ctx, k, entry);
  } catch (err) {
    if (err instanceof RenderError) errors.push(...err.diagnostics);
    else errors.push(locatedDiagnostic(entry, (err as Error).message));
    return resources;
  }
  const { docs } = loaded;
  if (docs.length === 0) return resources;
  const isJson6902 = docs.length === 1 && Array.isArray(docs[0].value);
  if (entry.origin === 'patchesJson6902' && !isJson6902) {
    errors.push(locatedDiagnostic(entry, 'patchesJson6902 needs a JSON 6902 patch (a list of operations)', 'PatchFailed'));
    return resources;
  }
  if (entry.origin === 'patchesStrategicMerge' && isJson6902) {
    errors.push(locatedDiagnostic(entry, 'patchesStrategicMerge needs a strategic-merge patch (an object), not a list of operations', 'PatchFailed'));
    return resources;
  }

  let targets: KResource[] | undefined;
  if (entry.target) {
    try {
      const selector = compileSelector(entry.target);
      targets = resources.filter((res) => selects(selector, res));
    } catch (err) {
      errors.push(diagnosticAt({ ...(entry.targetAt ?? entry.at), kind: 'Kustomization', field: childPath(entry.field, 'target') }, (err as Error).message));
      return resources;
    }
  }

  if (isJson6902) {
    if (!targets) {
      errors.push(locatedDiagnostic(entry, 'a JSON 6902 patch needs a target (group/version/kind/name/...)', 'PatchFailed'));
      return resources;
    }
    let ops;
    try {
      ops = parseJsonPatch(docs[0].value);
    } catch (err) {
      const index = err instanceof PatchError && err.path[0] !== undefined ? Number(err.path[0]) : undefined;
      const at = index === undefined ? docs[0].source : docs[0].fieldSources[childPath('', index)] ?? docs[0].source;
      errors.push(diagnosticAt({ ...at, field: entry.field }, (err as Error).message));
      return resources;
    }
    for (const res of targets) {
      try {
        const before = res.doc;
        const after = applyJsonPatch(before, ops);
        if (!isObject(after)) throw new PatchError('the patch replaced the whole object with a non-object');
        const roots = ops.flatMap((op) => [op.path, ...(op.from !== undefined ? [op.from] : [])]).map((p) => changedRoot(before, p));
        const sources = rebaseSources(before, after, res.fieldSources, { roots, inclusive: true });
        ops.forEach((op, i) => {
          if (op.op === 'remove' || op.op === 'test') return;
          const pointer = op.path.endsWith('/-') ? op.path.slice(0, -2) : op.path;
          const at = docs[0].fieldSources[childPath('', i)];
          if (at) sources[pointerToPath(pointer)] = at;
        });
        res.doc = after;
        res.fieldSources = sources;
      } catch (err) {
        const index = err instanceof PatchError && err.path[0] !== undefined ? Number(err.path[0]) : undefined;
        const at = index === undefined ? docs[0].source : docs[0].fieldSources[childPath('', index)] ?? docs[0].source;
        const id = resId(res);
        errors.push(diagnosticAt({ ...at, kind: id.kind, name: objectName(res), field: entry.field }, `JSON 6902 patch failed on ${id.kind} ${objectName(res)}: ${(err as Error).message}`));
      }
    }
    return resources;
  }

  for (const doc of docs) {
    if (!isObject(doc.value)) {
      errors.push(diagnosticAt({ ...doc.source, field: entry.field }, 'a strategic-merge patch document must be a mapping'));
      continue;
    }
    const patch = doc.value as JsonObject;
    let matched = targets;
    if (!matched) {
      const problem = smpIdentityProblem(patch);
      if (problem) {
        errors.push(diagnosticAt({ ...doc.source, field: entry.field }, problem));
        continue;
      }
      matched = matchByIdentity(resources, patch);
      if (matched.length !== 1) {
        const d = diagnosticAt({ ...doc.source, kind: String(patch.kind), name: patchName(patch), field: entry.field },
          matched.length === 0
            ? `no resource matches strategic merge patch ${patchDescription(patch)}`
            : `strategic merge patch ${patchDescription(patch)} matches ${matched.length} resources; it must match exactly one`);
        Object.defineProperty(d, 'code', { value: 'PatchNoMatch', enumerable: false });
        errors.push(d);
        continue;
      }
    }
    const body = withoutIdentity(patch);
    const leaves = patchLeaves(body);
    for (const res of matched) {
      try {
        const before = res.doc;
        const after = applyStrategicMerge(before, body, resId(res).group);
        res.fieldSources = rebaseSources(before, after, res.fieldSources, { roots: leaves, inclusive: true }, patch, doc.fieldSources);
        res.doc = after;
      } catch (err) {
        const field = err instanceof PatchError && err.path.length > 0 ? err.path.join('.') : undefined;
        const at = (field && doc.fieldSources[field]) || doc.source;
        const id = resId(res);
        errors.push(diagnosticAt({ ...at, kind: id.kind, name: objectName(res), field: field ?? entry.field }, `strategic merge patch failed on ${id.kind} ${objectName(res)}: ${(err as Error).message}`));
      }
    }
  }
  return resources;
}

/**
 * What a JSON patch operation at `pointer` can change: in a mapping, only the value at that key; in a list,
 * every element of the list (indexes shift), so the list itself.
 */
function changedRoot(doc: Json, pointer: string): string {
  const segments = pointer.split('/');
  const parent = segments.slice(0, -1).join('/');
  let node: Json | undefined = doc;
  for (const seg of parent.split('/').slice(1)) {
    const key = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? node[Number(key)] : isObject(node) ? node[key] : undefined;
  }
  return pointerToPath(Array.isArray(node) ? parent : pointer.endsWith('/-') ? parent : pointer);
}

function smpIdentityProblem(patch: JsonObject): string | undefined {
  const meta = patch.metadata;
  if (typeof patch.apiVersion !== 'string' || typeof patch.kind !== 'string' || !isObject(meta) || typeof meta.name !== 'string') {
    return 'a strategic-merge patch without a target needs apiVersion, kind and metadata.name to find its resource';
  }
  return undefined;
}

function patchName(patch: JsonObject): string {
  const meta = patch.metadata as JsonObject;
  return typeof meta.namespace === 'string' ? `${meta.namespace}/${meta.name}` : String(meta.name);
}

function patchDescription(patch: JsonObject): string {
  const apiVersion = String(patch.apiVersion);
  const slash = apiVersion.lastIndexOf('/');
  const meta = patch.metadata as JsonObject;
  return describeId({
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    version: slash < 0 ? apiVersion : apiVersion.slice(slash + 1),
    kind: String(patch.kind),
    name: String(meta.name),
    namespace: typeof meta.namespace === 'string' ? meta.namespace : '',
  });
}

/** kustomize matches an untargeted strategic-merge patch by GVK and by any name/namespace the resource has had. */
function matchByIdentity(resources: KResource[], patch: JsonObject): KResource[] {
  const meta = patch.metadata as JsonObject;
  const kind = String(patch.kind);
  const name = String(meta.name);
  const ns = effectiveNamespace(kind, typeof meta.namespace === 'string' ? meta.namespace : '');
  return resources.filter((res) => {
    const doc = res.doc;
    if (doc.apiVersion !== patch.apiVersion || doc.kind !== kind) return false;
    return allIds(res).some((id) => id.name === name && effectiveNamespace(kind, id.namespace) === ns);
  });
}

/** The patch without the fields that only identify its target (names may be older than the target's current one). */
function withoutIdentity(patch: JsonObject): JsonObject {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = patch;
  void _a;
  void _k;
  if (isObject(metadata)) {
    const { name: _n, namespace: _ns, ...meta } = metadata;
    void _n;
    void _ns;
    if (Object.keys(meta).length > 0) return { ...rest, metadata: meta as Json };
  }
  return rest;
}

