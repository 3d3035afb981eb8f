import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { PROJECT_ROOT } from './helpers/shared.js';

const run = promisify(execFile);

/**
 * There is no Docker engine on these machines, so the image cannot be built here. This test replays
 * what the Dockerfile's stages do, with the same commands, into a temporary /app: compile with
 * tsconfig.build.json, keep only production dependencies (as `npm prune --omit=dev` does), copy
 * package.json and bin/, and no src/ — then runs the entrypoint. It catches what would break the
 * image: a runtime import of a dev dependency, a file the build does not emit, a bin that needs tsx.
 */
describe('the Docker image, replayed without Docker', () => {
  let app: string;
  let dockerfile: string;

  beforeAll(async () => {
    dockerfile = await readFile(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
    app = await mkdtemp(join(tmpdir(), 'trellis-image-'));
    await run(join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { cwd: PROJECT_ROOT }).catch((err: { stdout?: string; message: string }) => {
      throw new Error(`the image's build step (tsc -p tsconfig.build.json) failed: ${err.stdout || err.message}`);
    });
    await cp(join(PROJECT_ROOT, 'package.json'), join(app, 'package.json'));
    await cp(join(PROJECT_ROOT, 'bin'), join(app, 'bin'), { recursive: true });
    await linkProductionDependencies(join(app, 'node_modules'));
  }, 240_000);

  afterAll(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  test('the Dockerfile is multi-stage, runs as a non-root user and has trellis as its entrypoint', () => {
    const instructions = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(instructions.filter((l) => /^FROM\s/i.test(l)).length).toBeGreaterThanOrEqual(2);
    const user = instructions.filter((l) => /^USER\s/i.test(l)).pop();
    expect(user).toBeDefined();
    expect(user?.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(instructions.find((l) => /^ENTRYPOINT\s/i.test(l))).toMatch(/bin\/trellis/);
  });

  test('every COPY source of the build context exists in the repository', () => {
    const sources = dockerfile
      .split('\n')
      .filter((l) => /^COPY\s/i.test(l.trim()) && !/--from=/.test(l))
      .flatMap((l) => l.trim().split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect({ source, exists: existsSync(join(PROJECT_ROOT, source)) }).toEqual({ source, exists: true });
  });

  test('the built entrypoint runs from dist/ with production dependencies only, and validates the sample repository', async () => {
    expect(existsSync(join(app, 'src'))).toBe(false); // bin/trellis can only run dist/ here
    for (const dev of ['typescript', 'jest', 'ts-jest', 'autocannon']) expect({ dev, present: existsSync(join(app, 'node_modules', dev)) }).toEqual({ dev, present: false });
    const help = await run(join(app, 'bin', 'trellis'), ['--help'], { cwd: app });
    expect(help.stdout).toMatch(/operator/);
    expect(help.stdout).toMatch(/validate/);
    const validated = await run(join(app, 'bin', 'trellis'), ['validate', '--repo', PROJECT_ROOT], { cwd: app });
    expect(validated.stdout).toMatch(/repository valid: 4 of 4 cluster\(s\) rendered, 0 error\(s\)/);
  }, 180_000);
});

/** Links every top-level production package (the tree `npm prune --omit=dev` would leave) into dir. */
async function linkProductionDependencies(dir: string): Promise<void> {
  const modules = join(PROJECT_ROOT, 'node_modules');
  const { stdout } = await run('npm', ['ls', '--all', '--omit=dev', '--parseable'], { cwd: PROJECT_ROOT, maxBuffer: 16 * 1024 * 1024 });
  const topLevel = new Set<string>();
  for (const path of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const rel = relative(modules, path);
    if (rel.startsWith('..') || rel === '') continue;
    const parts = rel.split(sep);
    const name = parts[0].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
    topLevel.add(name);
  }
  await mkdir(dir, { recursive: true });
  for (const name of topLevel) {
    if (name.includes('/')) await mkdir(join(dir, name.split('/')[0]), { recursive: true });
    await symlink(join(modules, name), join(dir, name), 'dir');
  }
}
