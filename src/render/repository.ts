import { existsSync } from 'node:fs';
import { childPath } from '../mesh/field-path.js';
import { fieldSource, parseDocuments } from '../mesh/load.js';
import type { Diagnostic, MeshObject, SourceRef, ValidationResult } from '../mesh/object.js';
import type { FleetSpec, IstioOperatorSpec } from '../mesh/api/index.js';
import { sortDiagnostics, validateObject, validateObjects } from '../mesh/validate.js';
import type { RenderCache } from './cache.js';
import { DiskFileSystem, joinRepoPath } from './fs.js';
import { resolveIstioOperator } from './istio-operator.js';
import { buildKustomizationDetailed, type KustomizeBuildResult } from './kustomize/build.js';
import { diagnosticAt, RenderError } from './kustomize/errors.js';
import type { ClusterRender, RepoFileSystem, RepositoryRender } from './types.js';

export const FLEET_FILE = 'trellis.yaml';
export const VERSIONS_DIR = 'versions';
export const OVERLAYS_DIR = 'kustomize/overlays';

const VERSION_DIR = /^versions\/([^/]+)(?:\/|$)/;

/**
 * Loads a whole config repository: the Fleet, every cluster's overlay (kustomize build), its one
 * IstioOperator merged on its profile, every `versions/<v>` folder (used or not), all validated.
 *
 * Contract: never throws for bad content. `errors` holds every problem found (never only the first),
 * each naming file:line, object and field; a non-empty `errors` means the repository must not be applied.
 * `clusters` holds each cluster that could be rendered (built, exactly one IstioOperator), in Fleet order.
 */
export interface LoadRepositoryOptions {
  /**
   * A cache shared across renders (e.g. across commits): unchanged files are not parsed again,
   * unchanged objects not validated again, and an overlay none of whose inputs changed is not built
   * again. With a cache, the objects of the result are deep-frozen and shared between renders.
   */
  cache?: RenderCache;
}

export async function loadRepository(fs: RepoFileSystem, options: LoadRepositoryOptions = {}): Promise<RepositoryRender> {
  const cached = new CachingFileSystem(fs);
  const findings = new Findings();
  const ctx: LoadContext = { fs: cached, cache: options.cache };
  const fleet = await loadFleet(ctx, findings);
  const clusters: ClusterRender[] = [];
  const fleetClusters = Array.isArray(fleet.spec?.clusters) ? fleet.spec.clusters : [];

  for (const [i, cluster] of fleetClusters.entries()) {
    // A name that is not a DNS label (the Fleet schema reports it) must not become a path.
    if (!cluster || typeof cluster.name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(cluster.name)) continue;
    const render = await loadCluster(ctx, fleet, cluster.name, cluster.overlay, i, findings);
    if (render) clusters.push(render);
  }
  await validateVersionFolders(ctx, findings);
  await checkStrayOverlays(cached, fleet, fleetClusters.map((c) => c?.name).filter((n): n is string => typeof n === 'string'), findings);

  const { errors, warnings } = findings.result();
  return { fleet, clusters, errors, warnings };
}

/** `loadRepository` over a checkout on disk (paths escaping `dir` are refused). */
export async function loadRepositoryFromDir(dir: string, options: LoadRepositoryOptions = {}): Promise<RepositoryRender> {
  if (!existsSync(dir)) throw new Error(`repository directory ${dir} does not exist`);
  return loadRepository(new DiskFileSystem(dir), options);
}

interface LoadContext {
  /** The render's file system (reads memoised for the duration of one render). */
  fs: RepoFileSystem;
  cache?: RenderCache;
}

interface ValidatedBuild {
  build: KustomizeBuildResult;
  validated: ValidationResult;
}

/** `kustomize build DIR` and the validation of its objects; through the cache (reused while no input changed) when there is one. */
async function buildAndValidate(ctx: LoadContext, dir: string): Promise<ValidatedBuild> {
  const { cache } = ctx;
  const run = async (fs: RepoFileSystem): Promise<ValidatedBuild> => {
    const build = await buildKustomizationDetailed(fs, dir, { cache });
    const validated = validateObjects(build.objects, cache ? { validateObject: (obj) => cache.validated(obj, validateObject) } : {});
    return { build, validated };
  };
  return cache ? cache.traced(`build:${dir}`, ctx.fs, run) : run(ctx.fs);
}

// ---------------------------------------------------------------------------------------------

/**
 * Collects diagnostics. Repository-level findings are added first and win over a mesh-validator
 * finding at the same place and field (the two layers check some of the same things); identical
 * findings (a base file seen by four clusters) are reported once.
 */
class Findings {
  private readonly own: Diagnostic[] = [];
  private readonly validator: Diagnostic[] = [];

  add(d: Diagnostic): void {
    this.own.push(d);
  }

  addAll(ds: Diagnostic[]): void {
    this.own.push(...ds);
  }

  addValidator(ds: Diagnostic[]): void {
    this.validator.push(...ds);
  }

  result(): { errors: Diagnostic[]; warnings: Diagnostic[] } {
    const place = (d: Diagnostic): string => `${d.file}:${d.line}:${d.col}:${d.fieldPath ?? ''}`;
    const ownPlaces = new Set(this.own.map(place));
    const seen = new Set<string>();
    const all: Diagnostic[] = [];
    for (const d of [...this.own, ...this.validator.filter((v) => !ownPlaces.has(place(v)))]) {
      const key = `${d.severity}|${place(d)}|${d.kind ?? ''}|${d.name ?? ''}|${d.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      all.push(d);
    }
    const sorted = sortDiagnostics(all);
    return { errors: sorted.filter((d) => d.severity === 'error'), warnings: sorted.filter((d) => d.severity === 'warning') };
  }
}

/**
 * Memoises every call for the duration of one render (a render reads one checkout, which does not
 * change under it): every overlay reads the same base and version files and asks about the same
 * directories, and on disk each question costs a realpath (symlink check) and a stat.
 */
class CachingFileSystem implements RepoFileSystem {
  private readonly calls = new Map<string, Promise<unknown>>();
  constructor(private readonly inner: RepoFileSystem) {}
  readFile(path: string): Promise<string> {
    return this.memo('r', path, () => this.inner.readFile(path));
  }
  exists(path: string): Promise<boolean> {
    return this.memo('e', path, () => this.inner.exists(path));
  }
  isDirectory(path: string): Promise<boolean> {
    return this.memo('d', path, () => this.inner.isDirectory(path));
  }
  async listDir(path: string): Promise<string[]> {
    return [...(await this.memo('l', path, () => this.inner.listDir(path)))];
  }
  private memo<T>(call: string, path: string, run: () => Promise<T>): Promise<T> {
    const key = `${call}\0${path}`;
    let pending = this.calls.get(key) as Promise<T> | undefined;
    if (!pending) this.calls.set(key, (pending = run()));
    return pending;
  }
}

const PLACEHOLDER_FLEET: MeshObject<FleetSpec> = {
  apiVersion: 'trellis.dev/v1alpha1',
  kind: 'Fleet',
  metadata: { name: '' },
  spec: { clusters: [], stages: [] },
  source: { file: FLEET_FILE, line: 1, col: 1 },
};

async function loadFleet(ctx: LoadContext, findings: Findings): Promise<MeshObject<FleetSpec>> {
  const { fs, cache } = ctx;
  const at = { file: FLEET_FILE };
  if (!(await fs.exists(FLEET_FILE))) {
    findings.add(diagnosticAt(at, `${FLEET_FILE} not found at the repository root: a config repository starts with a Fleet (kind: Fleet, apiVersion: trellis.dev/v1alpha1)`));
    return structuredClone(PLACEHOLDER_FLEET);
  }
  let text: string;
  try {
    text = await fs.readFile(FLEET_FILE);
  } catch (err) {
    findings.addAll(err instanceof RenderError ? err.diagnostics : [diagnosticAt(at, (err as Error).message)]);
    return structuredClone(PLACEHOLDER_FLEET);
  }
  const parsed = cache ? cache.parsed('documents', FLEET_FILE, text, () => parseDocuments(text, FLEET_FILE)) : parseDocuments(text, FLEET_FILE);
  findings.addAll(parsed.diagnostics);
  const fleets = parsed.objects.filter((o) => o.kind === 'Fleet');
  for (const other of parsed.objects.filter((o) => o.kind !== 'Fleet')) {
    findings.add(diagnosticAt({ ...(other.source ?? at), kind: other.kind, name: other.metadata.name, field: 'kind' }, `${FLEET_FILE} holds only the Fleet; ${other.kind} does not belong here`));
  }
  if (fleets.length === 0) {
    if (!parsed.diagnostics.some((d) => d.severity === 'error')) findings.add(diagnosticAt(at, `${FLEET_FILE} has no Fleet (kind: Fleet, apiVersion: trellis.dev/v1alpha1)`));
    return structuredClone(PLACEHOLDER_FLEET);
  }
  for (const extra of fleets.slice(1)) {
    findings.add(diagnosticAt({ ...(extra.source ?? at), kind: 'Fleet', name: extra.metadata.name }, `${FLEET_FILE} holds exactly one Fleet; another is at ${FLEET_FILE}:${fleets[0].source?.line ?? 1}`));
  }
  const fleet = fleets[0] as MeshObject<FleetSpec>;
  findings.addAll(checkFleetStages(fleet));
  const validated = validateObjects([fleet]);
  findings.addValidator([...validated.errors, ...validated.warnings]);
  return fleet;
}

/** Stage membership: every stage names known clusters, every cluster is in exactly one stage. */
function checkFleetStages(fleet: MeshObject<FleetSpec>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const spec = fleet.spec ?? ({} as FleetSpec);
  const clusters = Array.isArray(spec.clusters) ? spec.clusters : [];
  const stages = Array.isArray(spec.stages) ? spec.stages : [];
  const known = new Set(clusters.map((c) => c?.name).filter((n): n is string => typeof n === 'string'));
  const stageOf = new Map<string, string>();
  const err = (path: string, message: string): void => {
    out.push(diagnosticAt({ ...fieldSource(fleet, path), kind: 'Fleet', name: fleet.metadata.name, field: path }, message));
  };
  stages.forEach((stage, i) => {
    if (!stage || !Array.isArray(stage.clusters)) return;
    stage.clusters.forEach((name, j) => {
      if (typeof name !== 'string') return;
      const path = `spec.stages[${i}].clusters[${j}]`;
      if (!known.has(name)) err(path, `stage "${stage.name}" names cluster "${name}", which spec.clusters does not define (known: ${[...known].join(', ') || 'none'})`);
      const first = stageOf.get(name);
      if (first !== undefined) err(path, `cluster "${name}" is in two stages ("${first}" and "${stage.name}"); a cluster belongs to exactly one stage`);
      else stageOf.set(name, String(stage.name));
    });
  });
  clusters.forEach((cluster, i) => {
    if (cluster && typeof cluster.name === 'string' && !stageOf.has(cluster.name)) {
      err(`spec.clusters[${i}]`, `cluster "${cluster.name}" is in no stage; every cluster belongs to exactly one stage, or rollouts never reach it`);
    }
  });
  return out;
}

async function loadCluster(
  ctx: LoadContext,
  fleet: MeshObject<FleetSpec>,
  cluster: string,
  overlayField: string | undefined,
  index: number,
  findings: Findings,
): Promise<ClusterRender | undefined> {
  const { fs } = ctx;
  const clusterPath = `spec.clusters[${index}]`;
  const fleetAt = (path: string): SourceRef => fieldSource(fleet, path);
  const fleetError = (path: string, message: string): void => {
    findings.add(diagnosticAt({ ...fleetAt(path), kind: 'Fleet', name: fleet.metadata.name, field: path }, message));
  };

  let overlay: string;
  try {
    overlay = overlayField === undefined ? `${OVERLAYS_DIR}/${cluster}` : joinRepoPath('', overlayField);
  } catch (err) {
    fleetError(childPath(clusterPath, 'overlay'), `cluster "${cluster}": ${(err as Error).message.replace(/^.*error: /, '')}`);
    return undefined;
  }
  const overlayPath = overlayField === undefined ? clusterPath : childPath(clusterPath, 'overlay');
  let isDir: boolean;
  try {
    isDir = await fs.isDirectory(overlay);
  } catch (err) {
    fleetError(overlayPath, `cluster "${cluster}": overlay ${overlay}: ${err instanceof RenderError ? err.diagnostics[0].message : (err as Error).message}`);
    return undefined;
  }
  if (!isDir) {
    fleetError(overlayPath, `cluster "${cluster}": overlay directory ${overlay} does not exist (create it, or set spec.clusters[${index}].overlay)`);
    return undefined;
  }

  let build: KustomizeBuildResult;
  let validated: ValidationResult;
  try {
    ({ build, validated } = await buildAndValidate(ctx, overlay));
  } catch (err) {
    const diagnostics = err instanceof RenderError ? err.diagnostics : [diagnosticAt({ file: overlay }, (err as Error).message)];
    findings.addAll(await explainMissingVersions(fs, diagnostics));
    return undefined;
  }
  findings.addValidator(build.warnings);
  const overlayFile = build.files.find((f) => f.startsWith(`${overlay}/`) && /\/(kustomization\.ya?ml|Kustomization)$/.test(f)) ?? overlay;

  const versions = [...new Set(build.kustomizationDirs.map((d) => VERSION_DIR.exec(d)?.[1]).filter((v): v is string => v !== undefined))];
  // The IstioOperator from a versions/<v> folder is the cluster's; any other is the extra one.
  const fromVersions = (o: MeshObject): number => (VERSION_DIR.test(o.source?.file ?? '') ? 0 : 1);
  const operators = (build.objects.filter((o) => o.kind === 'IstioOperator') as Array<MeshObject<IstioOperatorSpec>>)
    .map((o, i) => ({ o, i }))
    .sort((a, b) => fromVersions(a.o) - fromVersions(b.o) || a.i - b.i)
    .map(({ o }) => o);
  findings.addValidator([...validated.errors, ...validated.warnings]);

  let ok = true;
  if (versions.length === 0) {
    findings.add(diagnosticAt({ file: overlayFile, field: 'resources' }, `cluster "${cluster}": overlay ${overlay} references no versions/<v> folder, so the cluster has no mesh version (add ../../../versions/<v> to resources)`));
    ok = false;
  } else if (versions.length > 1) {
    findings.add(diagnosticAt({ file: overlayFile, field: 'resources' }, `cluster "${cluster}": overlay ${overlay} references ${versions.length} version folders (${versions.map((v) => `versions/${v}`).join(', ')}); a cluster runs exactly one version`));
    ok = false;
  }
  if (operators.length === 0) {
    findings.add(diagnosticAt({ file: overlayFile, field: 'resources' }, `cluster "${cluster}": overlay ${overlay} yields no IstioOperator; a cluster has exactly one (it comes from its versions/<v> folder)`));
    ok = false;
  } else if (operators.length > 1) {
    const places = operators.map((o) => `${o.source?.file ?? '?'}:${o.source?.line ?? '?'}`).join(', ');
    for (const extra of operators.slice(1)) {
      findings.add(diagnosticAt({ ...fieldSource(extra, 'kind'), kind: 'IstioOperator', name: objectName(extra), field: 'kind' },
        `cluster "${cluster}" has ${operators.length} IstioOperators (${places}); a cluster has exactly one`));
    }
    ok = false;
  }
  if (!ok) return undefined;

  const version = versions[0];
  const iop = operators[0];
  checkTag(iop, version, findings);
  try {
    const merged = resolveIstioOperator(iop);
    return {
      cluster,
      overlay,
      version,
      istioOperator: iop,
      meshConfig: merged.meshConfig,
      objects: build.objects.filter((o) => o.kind !== 'IstioOperator'),
    };
  } catch (err) {
    findings.addAll(err instanceof RenderError ? err.diagnostics : [diagnosticAt({ file: overlay }, (err as Error).message)]);
    return undefined;
  }
}

function objectName(obj: MeshObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

function checkTag(iop: MeshObject<IstioOperatorSpec>, version: string, findings: Findings): void {
  const tag = iop.spec?.tag;
  if (tag === undefined) {
    findings.add(diagnosticAt({ ...fieldSource(iop, 'spec'), kind: 'IstioOperator', name: objectName(iop), field: 'spec.tag' }, `spec.tag is missing; it must equal its version folder "${version}"`));
  } else if (String(tag) !== version) {
    findings.add(diagnosticAt({ ...fieldSource(iop, 'spec.tag'), kind: 'IstioOperator', name: objectName(iop), field: 'spec.tag' },
      `spec.tag "${String(tag)}" must equal its version folder "${version}" (versions/${version}/)`));
  }
}

/** A missing `versions/<v>` resource gets a message that says what it means: an unknown mesh version. */
async function explainMissingVersions(fs: RepoFileSystem, diagnostics: Diagnostic[]): Promise<Diagnostic[]> {
  let known: string[] | undefined;
  const out: Diagnostic[] = [];
  for (const d of diagnostics) {
    const m = /\(looked for versions\/([^/)]+)\)$/.exec(d.message);
    if (!m) {
      out.push(d);
      continue;
    }
    known ??= (await fs.isDirectory(VERSIONS_DIR)) ? await fs.listDir(VERSIONS_DIR) : [];
    out.push({ ...d, message: `overlay references mesh version "${m[1]}", but versions/${m[1]} does not exist (versions in this repository: ${known.join(', ') || 'none'})` });
  }
  return out;
}

/** Every `versions/<v>` folder must build and validate, and carry exactly one IstioOperator tagged `<v>`. */
async function validateVersionFolders(ctx: LoadContext, findings: Findings): Promise<void> {
  const { fs } = ctx;
  if (!(await fs.isDirectory(VERSIONS_DIR))) {
    findings.add(diagnosticAt({ file: VERSIONS_DIR }, 'the repository has no versions/ folder: each mesh version lives in versions/<v>/'));
    return;
  }
  for (const name of await fs.listDir(VERSIONS_DIR)) {
    const dir = `${VERSIONS_DIR}/${name}`;
    let isDir: boolean;
    try {
      isDir = await fs.isDirectory(dir);
    } catch (err) {
      findings.addAll(err instanceof RenderError ? err.diagnostics : [diagnosticAt({ file: dir }, (err as Error).message)]);
      continue;
    }
    if (!isDir) continue;
    let build: KustomizeBuildResult;
    let validated: ValidationResult;
    try {
      ({ build, validated } = await buildAndValidate(ctx, dir));
    } catch (err) {
      findings.addAll(err instanceof RenderError ? err.diagnostics : [diagnosticAt({ file: dir }, (err as Error).message)]);
      continue;
    }
    findings.addValidator(build.warnings);
    findings.addValidator([...validated.errors, ...validated.warnings]);
    const operators = build.objects.filter((o) => o.kind === 'IstioOperator') as Array<MeshObject<IstioOperatorSpec>>;
    const kfile = build.files.find((f) => f.startsWith(`${dir}/`) && /\/(kustomization\.ya?ml|Kustomization)$/.test(f)) ?? dir;
    if (operators.length !== 1) {
      findings.add(diagnosticAt({ file: kfile, field: 'resources' }, `version folder ${dir} must yield exactly one IstioOperator, not ${operators.length}`));
    }
    for (const iop of operators) {
      checkTag(iop, name, findings);
      try {
        resolveIstioOperator(iop);
      } catch (err) {
        findings.addAll(err instanceof RenderError ? err.diagnostics : [diagnosticAt({ file: dir }, (err as Error).message)]);
      }
    }
    if (!(await fs.exists(`${dir}/UPGRADE.md`))) {
      findings.add(diagnosticAt({ file: dir }, `version folder ${dir} has no UPGRADE.md (how to move to this version)`, 'warning'));
    }
  }
}

/** An overlay directory no Fleet cluster uses is probably a cluster someone forgot to list. */
async function checkStrayOverlays(fs: RepoFileSystem, fleet: MeshObject<FleetSpec>, clusters: string[], findings: Findings): Promise<void> {
  if (!(await fs.isDirectory(OVERLAYS_DIR))) return;
  const used = new Set((fleet.spec?.clusters ?? []).map((c) => c?.overlay ?? `${OVERLAYS_DIR}/${c?.name}`));
  for (const name of await fs.listDir(OVERLAYS_DIR)) {
    const dir = `${OVERLAYS_DIR}/${name}`;
    if (used.has(dir) || clusters.includes(name)) continue;
    if (!(await fs.isDirectory(dir).catch(() => false))) continue;
    findings.add(diagnosticAt({ file: dir }, `overlay ${dir} belongs to no cluster in ${FLEET_FILE}; it is not rendered`, 'warning'));
  }
}
