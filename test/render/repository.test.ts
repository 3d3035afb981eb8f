import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { formatDiagnostic } from '../../src/mesh/object.js';
import { MemoryFileSystem } from '../../src/render/fs.js';
import { loadRepository, loadRepositoryFromDir } from '../../src/render/repository.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

/** The sample repository (trellis.yaml, versions/, kustomize/) as a path → content map. */
function sampleFiles(): Record<string, string> {
  const files: Record<string, string> = { 'trellis.yaml': readFileSync(join(PROJECT_ROOT, 'trellis.yaml'), 'utf8') };
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[relative(PROJECT_ROOT, full)] = readFileSync(full, 'utf8');
    }
  };
  walk(join(PROJECT_ROOT, 'versions'));
  walk(join(PROJECT_ROOT, 'kustomize'));
  return files;
}

function edit(files: Record<string, string>, path: string, from: string | RegExp, to: string): void {
  const before = files[path];
  const after = before.replace(from, to);
  if (after === before) throw new Error(`test setup: ${String(from)} not found in ${path}`);
  files[path] = after;
}

async function problems(files: Record<string, string>): Promise<{ errors: string[]; warnings: string[] }> {
  const render = await loadRepository(new MemoryFileSystem(files));
  return { errors: render.errors.map(formatDiagnostic), warnings: render.warnings.map(formatDiagnostic) };
}

describe('loadRepository on the sample repository', () => {
  it('renders four clusters on 1.15.4 with no errors and no warnings', async () => {
    const render = await loadRepositoryFromDir(PROJECT_ROOT);
    expect(render.errors.map(formatDiagnostic)).toEqual([]);
    expect(render.warnings.map(formatDiagnostic)).toEqual([]);
    expect(render.fleet.metadata.name).toBe('bookinfo-fleet');
    expect(render.clusters.map((c) => [c.cluster, c.version, c.overlay])).toEqual([
      ['dev', '1.15.4', 'kustomize/overlays/dev'],
      ['staging', '1.15.4', 'kustomize/overlays/staging'],
      ['prod-us', '1.15.4', 'kustomize/overlays/prod-us'],
      ['prod-eu', '1.15.4', 'kustomize/overlays/prod-eu'],
    ]);
    const dev = render.clusters[0];
    expect(dev.istioOperator.spec.tag).toBe('1.15.4');
    expect(dev.istioOperator.source?.file).toBe('versions/1.15.4/istiooperator.yaml');
    expect(dev.meshConfig).toMatchObject({
      accessLogFile: '/dev/stdout',
      accessLogEncoding: 'TEXT',
      outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
      trustDomain: 'cluster.local',
      connectTimeout: '10s',
      defaultHttpRetryPolicy: { attempts: 2 },
    });
    expect(dev.objects.some((o) => o.kind === 'IstioOperator')).toBe(false);
    const kinds = new Set(dev.objects.map((o) => o.kind));
    expect([...kinds].sort()).toEqual(['AuthorizationPolicy', 'DestinationRule', 'Gateway', 'PeerAuthentication', 'Service', 'VirtualService']);
    const reviews = dev.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'reviews');
    expect(reviews?.metadata.namespace).toBe('bookinfo');
    expect(reviews?.metadata.labels).toEqual({ 'app.kubernetes.io/part-of': 'bookinfo', 'trellis.dev/cluster': 'dev' });
    expect(reviews?.source?.file).toBe('kustomize/base/virtual-services.yaml');
    expect(reviews?.fieldSources?.['spec.http[1].route[1].weight']?.file).toBe('kustomize/overlays/dev/kustomization.yaml');
  });

  it('renders 1.16.1 differently where a proxy feels it', async () => {
    const files = sampleFiles();
    edit(files, 'kustomize/overlays/staging/kustomization.yaml', 'versions/1.15.4', 'versions/1.16.1');
    const render = await loadRepository(new MemoryFileSystem(files));
    expect(render.errors).toEqual([]);
    const staging = render.clusters.find((c) => c.cluster === 'staging')!;
    expect(staging.version).toBe('1.16.1');
    expect(staging.meshConfig.accessLogEncoding).toBe('JSON');
    expect(staging.meshConfig.outboundTrafficPolicy).toEqual({ mode: 'REGISTRY_ONLY' });
    expect(staging.meshConfig.defaultHttpRetryPolicy?.retryOn).toContain('503');
    const meshWide = staging.objects.find((o) => o.kind === 'PeerAuthentication' && o.metadata.namespace === 'istio-system');
    expect(meshWide?.spec).toEqual({ mtls: { mode: 'STRICT' } });
    expect(render.clusters.find((c) => c.cluster === 'dev')!.version).toBe('1.15.4');
  });
});

describe('loadRepository refuses a broken repository with every error, each located', () => {
  it('spec.tag differing from its folder (reported once, not once per cluster)', async () => {
    const files = sampleFiles();
    edit(files, 'versions/1.15.4/istiooperator.yaml', 'tag: 1.15.4', 'tag: 1.15.3');
    const { errors } = await problems(files);
    expect(errors).toEqual([
      'versions/1.15.4/istiooperator.yaml:8:3: error: IstioOperator istio-system/control-plane spec.tag: spec.tag "1.15.3" must equal its version folder "1.15.4" (versions/1.15.4/)',
    ]);
  });

  it('an overlay referencing a missing version folder', async () => {
    const files = sampleFiles();
    edit(files, 'kustomize/overlays/dev/kustomization.yaml', 'versions/1.15.4', 'versions/9.9.9');
    const { errors } = await problems(files);
    expect(errors).toEqual([
      'kustomize/overlays/dev/kustomization.yaml:6:3: error: Kustomization resources[1]: overlay references mesh version "9.9.9", but versions/9.9.9 does not exist (versions in this repository: 1.15.4, 1.16.1)',
    ]);
  });

  it('two IstioOperators in one cluster, and none in another', async () => {
    const files = sampleFiles();
    edit(files, 'kustomize/overlays/staging/kustomization.yaml', '- ../../../versions/1.15.4', '- ../../../versions/1.15.4\n- canary-iop.yaml');
    files['kustomize/overlays/staging/canary-iop.yaml'] = 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: canary\n  namespace: istio-system\nspec:\n  tag: 1.15.4\n';
    edit(files, 'kustomize/overlays/prod-eu/kustomization.yaml', '- ../../../versions/1.15.4\n', '');
    const render = await loadRepository(new MemoryFileSystem(files));
    const errors = render.errors.map(formatDiagnostic);
    expect(errors).toContain(
      'kustomize/overlays/staging/canary-iop.yaml:2:1: error: IstioOperator istio-system/canary kind: cluster "staging" has 2 IstioOperators (versions/1.15.4/istiooperator.yaml:1, kustomize/overlays/staging/canary-iop.yaml:1); a cluster has exactly one',
    );
    expect(errors).toContain(
      'kustomize/overlays/prod-eu/kustomization.yaml:1:1: error: resources: cluster "prod-eu": overlay kustomize/overlays/prod-eu references no versions/<v> folder, so the cluster has no mesh version (add ../../../versions/<v> to resources)',
    );
    expect(errors).toContain(
      'kustomize/overlays/prod-eu/kustomization.yaml:1:1: error: resources: cluster "prod-eu": overlay kustomize/overlays/prod-eu yields no IstioOperator; a cluster has exactly one (it comes from its versions/<v> folder)',
    );
    expect(render.clusters.map((c) => c.cluster)).toEqual(['dev', 'prod-us']);
  });

  it('Fleet stage errors: unknown cluster, a cluster in no stage, a cluster in two stages, a missing overlay', async () => {
    const files = sampleFiles();
    edit(files, 'trellis.yaml', '    clusters: [dev]', '    clusters: [dev, qa-typo]');
    edit(files, 'trellis.yaml', '    clusters: [staging]', '    clusters: [dev]');
    edit(files, 'trellis.yaml', '  stages:', '  - name: canary-lab\n  stages:');
    const { errors } = await problems(files);
    expect(errors).toEqual([
      'trellis.yaml:12:5: error: Fleet bookinfo-fleet spec.clusters[1]: cluster "staging" is in no stage; every cluster belongs to exactly one stage, or rollouts never reach it',
      'trellis.yaml:23:5: error: Fleet bookinfo-fleet spec.clusters[4]: cluster "canary-lab" is in no stage; every cluster belongs to exactly one stage, or rollouts never reach it',
      'trellis.yaml:23:5: error: Fleet bookinfo-fleet spec.clusters[4]: cluster "canary-lab": overlay directory kustomize/overlays/canary-lab does not exist (create it, or set spec.clusters[4].overlay)',
      'trellis.yaml:26:21: error: Fleet bookinfo-fleet spec.stages[0].clusters[1]: stage "dev" names cluster "qa-typo", which spec.clusters does not define (known: dev, staging, prod-us, prod-eu, canary-lab)',
      'trellis.yaml:28:16: error: Fleet bookinfo-fleet spec.stages[1].clusters[0]: cluster "dev" is in two stages ("dev" and "staging"); a cluster belongs to exactly one stage',
    ]);
  });

  it('never turns an invalid cluster name into a path', async () => {
    const files = sampleFiles();
    edit(files, 'trellis.yaml', '  - name: dev\n', '  - name: ../../versions/1.15.4\n');
    const render = await loadRepository(new MemoryFileSystem(files));
    expect(render.errors.map(formatDiagnostic).join('\n')).toMatch(/trellis\.yaml:9:\d+: error: Fleet bookinfo-fleet spec\.clusters\[0\]\.name: /);
    expect(render.clusters.map((c) => c.cluster)).toEqual(['staging', 'prod-us', 'prod-eu']);
  });

  it('validates version folders no cluster uses', async () => {
    const files = sampleFiles();
    files['versions/2.0.0/kustomization.yaml'] = 'resources:\n- istiooperator.yaml\n';
    files['versions/2.0.0/istiooperator.yaml'] = 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: cp\n  namespace: istio-system\nspec:\n  profile: ambient\n  tag: 2.0.1\n  meshConfig:\n    connectTimeout: soon\n';
    const { errors, warnings } = await problems(files);
    expect(errors.join('\n')).toContain('versions/2.0.0/istiooperator.yaml:8:3: error: IstioOperator istio-system/cp spec.tag: spec.tag "2.0.1" must equal its version folder "2.0.0"');
    expect(errors.join('\n')).toContain('versions/2.0.0/istiooperator.yaml:7:3: error: IstioOperator istio-system/cp spec.profile: unknown profile "ambient"');
    expect(errors.join('\n')).toMatch(/versions\/2\.0\.0\/istiooperator\.yaml:10:\d+: error: IstioOperator istio-system\/cp spec\.meshConfig\.connectTimeout/);
    expect(warnings).toEqual(['versions/2.0.0:1:1: warning: version folder versions/2.0.0 has no UPGRADE.md (how to move to this version)']);
  });

  it('collects errors from several clusters and files at once', async () => {
    const files = sampleFiles();
    edit(files, 'kustomize/base/virtual-services.yaml', 'timeout: 6s', 'timeout: six');
    edit(files, 'kustomize/overlays/prod-us/kustomization.yaml', 'path: patches/timeouts.yaml', 'path: patches/missing.yaml');
    delete files['trellis.yaml'];
    const { errors } = await problems(files);
    expect(errors).toContain('trellis.yaml:1:1: error: trellis.yaml not found at the repository root: a config repository starts with a Fleet (kind: Fleet, apiVersion: trellis.dev/v1alpha1)');
    const again = sampleFiles();
    edit(again, 'kustomize/base/virtual-services.yaml', 'timeout: 6s', 'timeout: six');
    edit(again, 'kustomize/overlays/prod-us/kustomization.yaml', 'path: patches/timeouts.yaml', 'path: patches/missing.yaml');
    const both = (await problems(again)).errors;
    expect(both.some((e) => e.startsWith('kustomize/base/virtual-services.yaml:') && e.includes('spec.http[0].timeout'))).toBe(true);
    expect(both).toContain('kustomize/overlays/prod-us/kustomization.yaml:12:3: error: Kustomization patches[0].path: patch file "patches/missing.yaml" not found (looked for kustomize/overlays/prod-us/patches/missing.yaml)');
  });
});

