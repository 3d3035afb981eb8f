import { isMap, parseDocument } from 'yaml';
import type { FleetSpec } from '../../mesh/api/index.js';
import type { RepoFileSystem } from '../../render/types.js';
import { bumpOverlayVersion, referencedVersion } from './overlay-bump.js';
import { upgradeSkewViolation } from './skew.js';

/** File changes to commit, by repository-relative path. */
export type FileChanges = Map<string, string>;

export function overlayDir(fleet: FleetSpec, cluster: string): string {
  return fleet.clusters.find((c) => c.name === cluster)?.overlay ?? `kustomize/overlays/${cluster}`;
}

async function kustomizationPath(fs: RepoFileSystem, dir: string): Promise<string> {
  for (const name of ['kustomization.yaml', 'kustomization.yml', 'Kustomization']) {
    if (await fs.exists(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  throw new Error(`${dir}: no kustomization.yaml`);
}

/** The `versions/<v>` folder a cluster's overlay references. */
export async function clusterVersion(fs: RepoFileSystem, fleet: FleetSpec, cluster: string): Promise<string | undefined> {
  return referencedVersion(await fs.readFile(await kustomizationPath(fs, overlayDir(fleet, cluster))));
}

/** Points the given clusters' overlays from `from` (or whatever they reference) to `to`. */
export async function planOverlayBumps(fs: RepoFileSystem, fleet: FleetSpec, clusters: readonly string[], to: string): Promise<FileChanges> {
  const changes: FileChanges = new Map();
  for (const cluster of clusters) {
    const path = await kustomizationPath(fs, overlayDir(fleet, cluster));
    const text = await fs.readFile(path);
    const from = referencedVersion(text);
    if (!from) throw new Error(`${path}: the overlay of cluster ${cluster} references no single versions/<v> folder`);
    if (from === to) continue;
    changes.set(path, bumpOverlayVersion(text, from, to).text);
  }
  return changes;
}

/** Files of `versions/<dir>` (recursively), repository-relative. */
async function listTree(fs: RepoFileSystem, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await fs.listDir(dir)) {
    const path = `${dir}/${name}`;
    if (await fs.isDirectory(path)) out.push(...(await listTree(fs, path)));
    else out.push(path);
  }
  return out;
}

function setOperatorTag(text: string, file: string, tag: string): string {
  const doc = parseDocument(text);
  const spec = isMap(doc.contents) ? doc.contents.get('spec', true) : undefined;
  if (!isMap(spec)) throw new Error(`${file}: IstioOperator has no spec`);
  spec.set('tag', tag);
  return doc.toString();
}

function upgradeNotes(from: string, to: string, firstStage: string): string {
  return [
    `# Upgrade to ${to}`,
    '',
    `Created by \`trellis upgrade --from ${from} --to ${to}\` as a copy of \`versions/${from}\` with \`spec.tag\` bumped.`,
    '',
    '## What changes for proxies',
    '',
    `- Describe here what ${to} changes compared with ${from} (mesh config, defaults, resources under mesh/).`,
    '',
    '## Rollout',
    '',
    `- Stage \`${firstStage}\` moves first, canary step by canary step, gated by analysis.`,
    '- Later stages move only after the previous stage verified this version (see the status branch).',
    '',
  ].join('\n');
}

/**
 * Plans `trellis upgrade`: copy versions/<from> to versions/<to> with spec.tag bumped and an
 * UPGRADE.md started, and point the first stage's overlays at it. Pure with respect to the
 * repository: nothing is written; the caller validates the result and commits it.
 */
export async function planUpgrade(fs: RepoFileSystem, fleet: FleetSpec, from: string, to: string): Promise<FileChanges> {
  const skew = upgradeSkewViolation(from, to);
  if (skew) throw new Error(`refusing the upgrade: ${skew}`);
  if (!(await fs.isDirectory(`versions/${from}`))) throw new Error(`versions/${from}: no such version folder`);
  if (await fs.exists(`versions/${to}`)) throw new Error(`versions/${to} already exists`);
  const first = fleet.stages[0];
  if (!first) throw new Error('trellis.yaml: the Fleet has no stages');

  const changes: FileChanges = new Map();
  for (const path of await listTree(fs, `versions/${from}`)) {
    const target = `versions/${to}/${path.slice(`versions/${from}/`.length)}`;
    let text = await fs.readFile(path);
    if (/(^|\/)istiooperator\.ya?ml$/.test(path)) text = setOperatorTag(text, path, to);
    if (/(^|\/)UPGRADE\.md$/.test(path)) text = upgradeNotes(from, to, first.name);
    changes.set(target, text);
  }
  if (!changes.has(`versions/${to}/UPGRADE.md`)) changes.set(`versions/${to}/UPGRADE.md`, upgradeNotes(from, to, first.name));

  const firstStageFrom = [];
  for (const cluster of first.clusters) {
    if ((await clusterVersion(fs, fleet, cluster)) === from) firstStageFrom.push(cluster);
  }
  if (firstStageFrom.length === 0) throw new Error(`no cluster of the first stage "${first.name}" runs ${from}`);
  for (const [path, text] of await planOverlayBumps(fs, fleet, firstStageFrom, to)) changes.set(path, text);
  return changes;
}
