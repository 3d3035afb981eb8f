import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { Diagnostic, MeshObject } from '../../../src/mesh/object.js';
import type { FleetSpec } from '../../../src/mesh/api/trellis.js';
import type { ClusterRender, RepositoryRender } from '../../../src/render/types.js';

/**
 * A deliberately tiny stand-in for loadRepositoryFromDir, so the reconciler's tests do not depend
 * on the renderer: `trellis.yaml` lists clusters; `clusters/<name>.yaml` holds `version: X`.
 * YAML syntax errors and a missing version become errors with file:line, like the real loader's.
 */
export async function loadMiniRepo(dir: string): Promise<RepositoryRender> {
  const errors: Diagnostic[] = [];
  const fleetDoc = await parseFile(dir, 'trellis.yaml', errors);
  const fleetSpec = ((fleetDoc as { spec?: FleetSpec } | undefined)?.spec ?? { clusters: [], stages: [] }) as FleetSpec;
  const fleet: MeshObject<FleetSpec> = { apiVersion: 'trellis.dev/v1alpha1', kind: 'Fleet', metadata: { name: 'fleet' }, spec: fleetSpec, source: { file: 'trellis.yaml', line: 1, col: 1 } };
  const clusters: ClusterRender[] = [];
  for (const c of fleetSpec.clusters ?? []) {
    const file = `clusters/${c.name}.yaml`;
    const doc = (await parseFile(dir, file, errors)) as { version?: unknown } | undefined;
    if (doc === undefined) continue;
    if (typeof doc?.version !== 'string') {
      errors.push({ severity: 'error', file, line: 1, col: 1, kind: 'Cluster', name: c.name, fieldPath: 'version', message: 'version is required' });
      continue;
    }
    clusters.push({
      cluster: c.name,
      overlay: `kustomize/overlays/${c.name}`,
      version: doc.version,
      istioOperator: { apiVersion: 'install.istio.io/v1alpha1', kind: 'IstioOperator', metadata: { name: c.name }, spec: { tag: doc.version } } as ClusterRender['istioOperator'],
      meshConfig: {},
      objects: [],
    });
  }
  return { fleet, clusters, errors, warnings: [] };
}

async function parseFile(dir: string, file: string, errors: Diagnostic[]): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(join(dir, file), 'utf8');
  } catch {
    errors.push({ severity: 'error', file, line: 1, col: 1, message: 'file not found' });
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length) {
    for (const e of doc.errors) {
      const pos = lineCounter.linePos(e.pos[0]);
      errors.push({ severity: 'error', file, line: pos.line, col: pos.col, message: e.message.split('\n')[0]! });
    }
    return undefined;
  }
  return doc.toJS();
}

/** Files of a valid mini repository with the given cluster → version map. */
export function miniRepoFiles(versions: Record<string, string>): Record<string, string> {
  const names = Object.keys(versions);
  const files: Record<string, string> = {
    'trellis.yaml': [
      'apiVersion: trellis.dev/v1alpha1',
      'kind: Fleet',
      'metadata:',
      '  name: fleet',
      'spec:',
      '  clusters:',
      ...names.map((n) => `    - name: ${n}`),
      '  stages:',
      '    - name: all',
      `      clusters: [${names.join(', ')}]`,
      '',
    ].join('\n'),
  };
  for (const [n, v] of Object.entries(versions)) files[`clusters/${n}.yaml`] = `version: "${v}"\n`;
  return files;
}
