import { execFile, execFileSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { PROJECT_ROOT } from '../helpers/shared.js';

const run = promisify(execFile);
const trellis = join(PROJECT_ROOT, 'bin', 'trellis');
let dir: string;

const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args]).toString().trim();

beforeEach(async () => {
  // A clone of the sample config repository as it was before 1.16.1 existed.
  dir = await mkdtemp(join(tmpdir(), 'trellis-upgrade-'));
  for (const entry of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(PROJECT_ROOT, entry), join(dir, entry), { recursive: true });
  await rm(join(dir, 'versions', '1.16.1'), { recursive: true, force: true });
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-qm', 'fleet on 1.15.4');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test('trellis upgrade creates the version folder, moves the first stage and commits on a new branch', async () => {
  const { stdout } = await run(trellis, ['upgrade', '--from', '1.15.4', '--to', '1.16.1', '--repo', dir]);
  expect(stdout).toMatch(/branch upgrade\/1\.16\.1/);
  expect(git('rev-parse', '--abbrev-ref', 'HEAD')).toBe('upgrade/1.16.1');
  expect(git('status', '--porcelain')).toBe('');
  const changed = git('diff', '--name-only', 'main', 'HEAD').split('\n');
  expect(changed).toContain('versions/1.16.1/istiooperator.yaml');
  expect(changed).toContain('versions/1.16.1/UPGRADE.md');
  expect(changed).toContain('kustomize/overlays/dev/kustomization.yaml');
  expect(changed).not.toContain('kustomize/overlays/staging/kustomization.yaml');
  expect(await readFile(join(dir, 'versions/1.16.1/istiooperator.yaml'), 'utf8')).toMatch(/tag: ["']?1\.16\.1/);
  // The result validates as a whole.
  await run(trellis, ['validate', '--repo', dir]);
});

test('a skip past the skew rules is refused and the clone is left untouched', async () => {
  const head = git('rev-parse', 'HEAD');
  const err = await run(trellis, ['upgrade', '--from', '1.15.4', '--to', '1.18.0', '--repo', dir]).catch((e: { code: number; stderr: string }) => e);
  expect((err as { code: number }).code).toBe(1);
  expect((err as { stderr: string }).stderr).toMatch(/skips 3 minor versions/);
  expect(git('rev-parse', 'HEAD')).toBe(head);
  expect(git('rev-parse', '--abbrev-ref', 'HEAD')).toBe('main');
  expect(git('status', '--porcelain')).toBe('');
});
