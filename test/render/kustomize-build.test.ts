import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskFileSystem, MemoryFileSystem } from '../../src/render/fs.js';
import { buildKustomization, buildKustomizationDetailed, RenderError } from '../../src/render/kustomize/index.js';

const VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
`;

async function failure(promise: Promise<unknown>): Promise<RenderError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(RenderError);
    return err as RenderError;
  }
  throw new Error('expected the build to fail');
}

describe('buildKustomization: refusals name file, line and field', () => {
  it('refuses every unsupported kustomization field, never ignoring one', async () => {
    const fs = new MemoryFileSystem({
      'k/kustomization.yaml': 'resources:\n- vs.yaml\nconfigMapGenerator:\n- name: x\nimages:\n- name: y\n',
      'k/vs.yaml': VS,
    });
    const err = await failure(buildKustomization(fs, 'k'));
    expect(err.code).toBe('UnsupportedField');
    expect(err.diagnostics).toHaveLength(2);
    expect(err.message).toContain('k/kustomization.yaml:3:1: error: Kustomization configMapGenerator: kustomization field "configMapGenerator" is not supported');
    expect(err.message).toContain('k/kustomization.yaml:5:1: error: Kustomization images: kustomization field "images" is not supported');
  });

  it('refuses Components, unknown patch fields, non-string label values and bad selectors', async () => {
    const fs = new MemoryFileSystem({
      'k/kustomization.yaml': [
        'kind: Component',
        'commonLabels:',
        '  version: 2',
        'patches:',
        '- path: p.yaml',
        '  frobnicate: true',
        '  options: {allowNameChange: true}',
        '',
      ].join('\n'),
    });
    const err = await failure(buildKustomization(fs, 'k'));
    const text = err.message;
    expect(text).toContain('k/kustomization.yaml:1:1: error: Kustomization kind: kustomize Components are not supported');
    expect(text).toContain('k/kustomization.yaml:3:3: error: Kustomization commonLabels.version: value must be a string (quote it), not number 2');
    expect(text).toContain('k/kustomization.yaml:6:3: error: Kustomization patches[0].frobnicate: unknown patches field "frobnicate"');
    expect(text).toContain('patches[0].options.allowNameChange: patch option "allowNameChange" is not supported');
  });

  it('collects every bad resource entry, not only the first', async () => {
    const fs = new MemoryFileSystem({
      'k/kustomization.yaml': 'resources:\n- missing.yaml\n- /etc/passwd\n- ../../../x\n- https://github.com/x/y\n- bad.yaml\n',
      'k/bad.yaml': 'apiVersion: v1\nkind: X\nmetadata:\n  name: a\n  name: b\n',
    });
    const err = await failure(buildKustomization(fs, 'k'));
    const lines = err.message.split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe('k/kustomization.yaml:2:3: error: Kustomization resources[0]: resource "missing.yaml" not found (looked for k/missing.yaml)');
    expect(lines[1]).toMatch(/^k\/kustomization.yaml:3:3: error: Kustomization resources\[1\]: path "\/etc\/passwd" is absolute/);
    expect(lines[2]).toMatch(/^k\/kustomization.yaml:4:3: error: Kustomization resources\[2\]: "..\/..\/..\/x": path ".*" climbs above the repository root/);
    expect(lines[3]).toContain('remote resource "https://github.com/x/y" is not supported');
    expect(lines[4]).toMatch(/^k\/bad.yaml:5:3: error: duplicate key/);
  });

  it('refuses a YAML syntax error in a kustomization file with its position', async () => {
    const fs = new MemoryFileSystem({ 'k/kustomization.yaml': 'resources:\n- a.yaml\n  - b: [\n' });
    const err = await failure(buildKustomization(fs, 'k'));
    expect(err.code).toBe('YamlSyntax');
    expect(err.message).toMatch(/^k\/kustomization.yaml:\d+:\d+: error: YAML syntax error/);
  });

  it('refuses hostile kustomization YAML: duplicate keys, alias bombs, an alias bomb inside an inline patch', async () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 60 }, (_, i) => `b${i}: &b${i} [*a, *a]`)].join('\n');
    const fs = new MemoryFileSystem({
      'dup/kustomization.yaml': 'resources: []\nnamespace: a\nnamespace: b\n',
      'bomb/kustomization.yaml': `${bomb}\n`,
      'inline/kustomization.yaml': `resources: [vs.yaml]\npatches:\n- target: {kind: VirtualService}\n  patch: |-\n${bomb.split('\n').map((l) => `    ${l}`).join('\n')}\n`,
      'inline/vs.yaml': VS,
    });
    expect((await failure(buildKustomization(fs, 'dup'))).message).toMatch(/^dup\/kustomization.yaml:3:1: error: duplicate key/);
    expect((await failure(buildKustomization(fs, 'bomb'))).message).toContain('bomb/kustomization.yaml:1:1: error: document uses more than 50 aliases (possible alias bomb); refused');
    expect((await failure(buildKustomization(fs, 'inline'))).message).toContain('inline/kustomization.yaml:5:5: error: document uses more than 50 aliases (possible alias bomb); refused');
  });

  it('refuses a missing kustomization directory', async () => {
    const err = await failure(buildKustomization(new MemoryFileSystem({}), 'nope'));
    expect(err.message).toBe('nope:1:1: error: kustomization directory "nope" does not exist');
  });
});

describe('buildKustomization: source positions survive the build', () => {
  const fs = new MemoryFileSystem({
    'base/kustomization.yaml': 'resources:\n- vs.yaml\n',
    'base/vs.yaml': `# leading comment\n${VS}`,
    'overlay/kustomization.yaml': [
      'resources:', //                          1
      '- ../base', //                           2
      'namePrefix: dev-', //                    3
      'commonLabels:', //                       4
      '  env: dev', //                          5
      'patches:', //                            6
      '- patch: |-', //                         7
      '    apiVersion: networking.istio.io/v1', // 8
      '    kind: VirtualService', //            9
      '    metadata:', //                       10
      '      name: reviews', //                 11
      '    spec:', //                           12
      '      http:', //                         13
      '      - route:', //                      14
      '        - destination:', //              15
      '            host: reviews', //           16
      '        timeout: 3s', //                 17
      '- target: {kind: VirtualService}', //    18
      '  path: ops.yaml', //                    19
      '',
    ].join('\n'),
    'overlay/ops.yaml': '- op: add\n  path: /spec/exportTo\n  value: ["."]\n',
  });

  it('keeps each object\'s file:line and points patched fields at the patch', async () => {
    const result = await buildKustomizationDetailed(fs, 'overlay');
    expect(result.kustomizationDirs).toEqual(['overlay', 'base']);
    expect(result.files.sort()).toEqual(['base/kustomization.yaml', 'base/vs.yaml', 'overlay/kustomization.yaml', 'overlay/ops.yaml']);
    const [vs] = result.objects;
    expect(vs.metadata).toEqual({ name: 'dev-reviews', labels: { env: 'dev' } });
    expect(vs.spec).toEqual({ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], timeout: '3s' }], exportTo: ['.'] });
    expect(vs.source).toEqual({ file: 'base/vs.yaml', line: 2, col: 1 });
    expect(vs.fieldSources?.['spec.hosts']).toEqual({ file: 'base/vs.yaml', line: 7, col: 3 });
    expect(vs.fieldSources?.['metadata.name']).toEqual({ file: 'base/vs.yaml', line: 5, col: 3 });
    expect(vs.fieldSources?.['spec.http[0].timeout']).toEqual({ file: 'overlay/kustomization.yaml', line: 17, col: 9 });
    expect(vs.fieldSources?.['spec.exportTo']).toEqual({ file: 'overlay/ops.yaml', line: 1, col: 3 });
    expect(vs.fieldSources?.['metadata.labels.env']).toEqual({ file: 'overlay/kustomization.yaml', line: 4, col: 1 });
  });

  it('warns about deprecated kustomization fields, as kustomize does', async () => {
    const legacy = new MemoryFileSystem({
      'k/kustomization.yaml': 'bases: [b]\ncommonLabels: {a: b}\npatchesJson6902: []\n',
      'k/b/kustomization.yaml': 'resources: [vs.yaml]\n',
      'k/b/vs.yaml': VS,
    });
    const result = await buildKustomizationDetailed(legacy, 'k');
    expect(result.objects).toHaveLength(1);
    expect(result.warnings.map((w) => `${w.file}:${w.line} ${w.message}`)).toEqual([
      'k/kustomization.yaml:2 "commonLabels" is deprecated in kustomize v5; use "labels" instead',
      'k/kustomization.yaml:3 "patchesJson6902" is deprecated in kustomize v5; use "patches" instead',
      'k/kustomization.yaml:1 "bases" is deprecated in kustomize v5; use "resources" instead',
    ]);
  });

  it('reports a failing JSON patch operation at its line, naming the object', async () => {
    const bad = new MemoryFileSystem({
      'k/kustomization.yaml': 'resources: [vs.yaml]\npatches:\n- target: {name: reviews}\n  patch: |-\n    - op: add\n      path: /spec/x\n      value: 1\n    - op: remove\n      path: /spec/gone\n',
      'k/vs.yaml': VS,
    });
    const err = await failure(buildKustomization(bad, 'k'));
    expect(err.message).toBe(
      'k/kustomization.yaml:8:7: error: VirtualService reviews patches[0]: JSON 6902 patch failed on VirtualService reviews: operation 1 (remove /spec/gone): no value at /spec/gone',
    );
  });
});

describe('buildKustomization on disk: symlinks and the load restrictor', () => {
  let dir: string;
  let outside: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-kbuild-'));
    outside = await mkdtemp(join(tmpdir(), 'trellis-kbuild-outside-'));
    await writeFile(join(outside, 'vs.yaml'), VS);
    await mkdir(join(dir, 'k'), { recursive: true });
    await mkdir(join(dir, 'other'), { recursive: true });
    await writeFile(join(dir, 'other', 'vs.yaml'), VS);
    await symlink(join(outside, 'vs.yaml'), join(dir, 'k', 'leak.yaml'));
    await writeFile(join(dir, 'k', 'kustomization.yaml'), 'resources:\n- leak.yaml\n- ../other/vs.yaml\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('refuses a symlink out of the repository and a file outside the kustomization root', async () => {
    const err = await failure(buildKustomization(new DiskFileSystem(dir), 'k'));
    expect(err.diagnostics.map((d) => `${d.file}:${d.line} ${d.fieldPath}`)).toEqual(['k/kustomization.yaml:2 resources[0]', 'k/kustomization.yaml:3 resources[1]']);
    expect(err.diagnostics[0].message).toContain('resolves outside the repository');
    expect(err.diagnostics[1].message).toContain('security: file "other/vs.yaml" is not in or below the kustomization root "k"');
  });
});
