import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import git from 'isomorphic-git';
import { MemoryFileSystem } from '../../src/render/fs.js';
import { OverlayFileSystem } from '../../src/render/overlay-fs.js';
import { commitTreeChanges, planOverlayBumps, planUpgrade, setFleetAbort, setFleetSuspended } from '../../src/reconciler/rollout/index.js';
import type { FleetSpec } from '../../src/mesh/api/index.js';

const fleet: FleetSpec = {
  clusters: [{ name: 'dev' }, { name: 'prod' }],
  stages: [
    { name: 'dev', clusters: ['dev'] },
    { name: 'prod', clusters: ['prod'] },
  ],
};

function repo(): MemoryFileSystem {
  return new MemoryFileSystem({
    'versions/1.15.4/kustomization.yaml': 'resources:\n  - istiooperator.yaml\n',
    'versions/1.15.4/istiooperator.yaml': 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: mesh\nspec:\n  profile: default\n  tag: 1.15.4 # the folder name\n',
    'versions/1.15.4/UPGRADE.md': '# 1.15.4\n',
    'versions/1.15.4/mesh/peer.yaml': 'kind: PeerAuthentication\n',
    'kustomize/overlays/dev/kustomization.yaml': 'resources:\n  - ../../base\n  - ../../../versions/1.15.4\n',
    'kustomize/overlays/prod/kustomization.yaml': 'resources:\n  - ../../base\n  - ../../../versions/1.15.4\n',
  });
}

describe('planUpgrade', () => {
  test('copies the version folder with spec.tag bumped, starts UPGRADE.md and moves only the first stage', async () => {
    const base = repo();
    const changes = await planUpgrade(base, fleet, '1.15.4', '1.16.1');
    expect([...changes.keys()].sort()).toEqual([
      'kustomize/overlays/dev/kustomization.yaml',
      'versions/1.16.1/UPGRADE.md',
      'versions/1.16.1/istiooperator.yaml',
      'versions/1.16.1/kustomization.yaml',
      'versions/1.16.1/mesh/peer.yaml',
    ]);
    expect(changes.get('versions/1.16.1/istiooperator.yaml')).toMatch(/tag: 1\.16\.1/);
    expect(changes.get('versions/1.16.1/istiooperator.yaml')).toMatch(/# the folder name/);
    expect(changes.get('versions/1.16.1/UPGRADE.md')).toMatch(/# Upgrade to 1\.16\.1/);
    expect(changes.get('kustomize/overlays/dev/kustomization.yaml')).toMatch(/versions\/1\.16\.1/);
    // The view with changes applied is what gets validated before any commit.
    const view = new OverlayFileSystem(base, changes);
    expect(await view.listDir('versions')).toEqual(['1.15.4', '1.16.1']);
    expect(await view.readFile('kustomize/overlays/prod/kustomization.yaml')).toMatch(/1\.15\.4/);
    expect(await view.isDirectory('versions/1.16.1/mesh')).toBe(true);
  });

  test('refuses skew-breaking skips, a missing source and an existing target', async () => {
    await expect(planUpgrade(repo(), fleet, '1.15.4', '1.18.0')).rejects.toThrow(/skips 3 minor versions/);
    await expect(planUpgrade(repo(), fleet, '1.14.0', '1.15.0')).rejects.toThrow(/versions\/1\.14\.0: no such version folder/);
    await expect(planUpgrade(repo(), fleet, '1.15.4', '1.15.4')).rejects.toThrow(/already/);
  });

  test('overlay bumps for a promotion leave clusters already on the version alone', async () => {
    const changes = await planOverlayBumps(repo(), fleet, ['dev', 'prod'], '1.16.1');
    expect(changes.size).toBe(2);
    const view = new OverlayFileSystem(repo(), changes);
    expect((await planOverlayBumps(view, fleet, ['dev'], '1.16.1')).size).toBe(0);
  });
});

describe('Fleet edits', () => {
  test('suspend and abort markers round-trip and keep comments', () => {
    const text = '# fleet\napiVersion: trellis.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: fleet\nspec:\n  clusters: []\n  stages: []\n';
    const paused = setFleetSuspended(text, true);
    expect(paused).toMatch(/suspend: true/);
    expect(paused).toMatch(/# fleet/);
    expect(setFleetSuspended(paused, false)).not.toMatch(/suspend/);
    const aborted = setFleetAbort(text, '1.16.1');
    expect(aborted).toMatch(/trellis\.dev\/abort: 1\.16\.1/);
    expect(setFleetAbort(aborted, undefined)).not.toMatch(/annotations/);
  });
});

describe('commitTreeChanges', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-tree-'));
    execFileSync('git', ['init', '-q', '-b', 'main', dir]);
    fs.mkdirSync(join(dir, 'kustomize/overlays/dev'), { recursive: true });
    fs.writeFileSync(join(dir, 'kustomize/overlays/dev/kustomization.yaml'), 'resources: []\n');
    fs.writeFileSync(join(dir, 'README.md'), 'hello\n');
    execFileSync('git', ['-C', dir, 'add', '-A']);
    execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'init']);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('creates a commit whose tree has the changes and keeps every other file, read back by the git CLI', async () => {
    const parent = execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD']).toString().trim();
    const sha = await commitTreeChanges({
      gitdir: join(dir, '.git'),
      parent,
      changes: new Map([
        ['kustomize/overlays/dev/kustomization.yaml', 'resources:\n  - ../../../versions/1.16.1\n'],
        ['status/dev.yaml', 'kind: ClusterStatus\n'],
      ]),
      message: 'dev: promote 1.16.1',
    });
    const show = (path: string) => execFileSync('git', ['-C', dir, 'show', `${sha}:${path}`]).toString();
    expect(show('kustomize/overlays/dev/kustomization.yaml')).toMatch(/1\.16\.1/);
    expect(show('status/dev.yaml')).toBe('kind: ClusterStatus\n');
    expect(show('README.md')).toBe('hello\n');
    expect(execFileSync('git', ['-C', dir, 'log', '-1', '--format=%an %P %s', sha]).toString().trim()).toBe(`trellis-operator ${parent} dev: promote 1.16.1`);
    execFileSync('git', ['-C', dir, 'fsck', '--no-progress']);
    const { commit } = await git.readCommit({ fs, gitdir: join(dir, '.git'), oid: sha });
    expect(commit.parent).toEqual([parent]);
  });
});
