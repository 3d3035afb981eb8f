import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskFileSystem, MemoryFileSystem, joinRepoPath, normalizeRepoPath } from '../../src/render/fs.js';
import { RenderError } from '../../src/render/kustomize/errors.js';

describe('normalizeRepoPath', () => {
  it.each([
    ['a/./b/../c', 'a/c'],
    ['.', ''],
    ['', ''],
    ['a/b/', 'a/b'],
    ['./a', 'a'],
  ])('%s → %s', (input, expected) => expect(normalizeRepoPath(input)).toBe(expected));

  it.each([
    ['../x', 'climbs above the repository root'],
    ['a/../../x', 'climbs above the repository root'],
    ['/etc/passwd', 'is absolute'],
    ['C:\\x', 'is absolute'],
    ['a\0b', 'NUL byte'],
  ])('refuses %j', (input, why) => {
    expect(() => normalizeRepoPath(input)).toThrow(why);
    try {
      normalizeRepoPath(input);
    } catch (err) {
      expect(err).toBeInstanceOf(RenderError);
      expect((err as RenderError).code).toBe('PathEscape');
    }
  });

  it('joins relative references and refuses absolute ones', () => {
    expect(joinRepoPath('kustomize/overlays/dev', '../../base')).toBe('kustomize/base');
    expect(() => joinRepoPath('kustomize', '../../x')).toThrow('climbs above');
    expect(() => joinRepoPath('kustomize', '/tmp/x')).toThrow('is absolute');
  });
});

describe('DiskFileSystem', () => {
  let dir: string;
  let outside: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-fs-'));
    outside = await mkdtemp(join(tmpdir(), 'trellis-outside-'));
    await mkdir(join(dir, 'repo', 'a'), { recursive: true });
    await writeFile(join(dir, 'repo', 'a', 'x.yaml'), 'x: 1\n');
    await writeFile(join(outside, 'secret'), 'top secret\n');
    await symlink(join(outside, 'secret'), join(dir, 'repo', 'a', 'leak.yaml'));
    await symlink(outside, join(dir, 'repo', 'outdir'));
    await symlink('x.yaml', join(dir, 'repo', 'a', 'inside.yaml'));
    await writeFile(join(dir, 'sibling.yaml'), 'y: 2\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('reads, lists and tests files inside the root', async () => {
    const fs = new DiskFileSystem(join(dir, 'repo'));
    expect(await fs.readFile('a/x.yaml')).toBe('x: 1\n');
    expect(await fs.readFile('a/inside.yaml')).toBe('x: 1\n');
    expect(await fs.listDir('a')).toEqual(['inside.yaml', 'leak.yaml', 'x.yaml']);
    expect(await fs.exists('a/x.yaml')).toBe(true);
    expect(await fs.exists('a/none.yaml')).toBe(false);
    expect(await fs.isDirectory('a')).toBe(true);
    expect(await fs.isDirectory('a/x.yaml')).toBe(false);
    await expect(fs.readFile('a/none.yaml')).rejects.toThrow('a/none.yaml:1:1: error: file not found');
  });

  it('refuses a symlink whose target is outside the root', async () => {
    const fs = new DiskFileSystem(join(dir, 'repo'));
    await expect(fs.readFile('a/leak.yaml')).rejects.toThrow('resolves outside the repository');
    await expect(fs.readFile('outdir/secret')).rejects.toThrow('resolves outside the repository');
    await expect(fs.listDir('outdir')).rejects.toThrow('resolves outside the repository');
  });

  it('refuses .. past the root and absolute paths', async () => {
    const fs = new DiskFileSystem(join(dir, 'repo'));
    await expect(fs.readFile('../sibling.yaml')).rejects.toThrow('climbs above the repository root');
    await expect(fs.readFile(join(dir, 'sibling.yaml'))).rejects.toThrow('is absolute');
  });
});

describe('MemoryFileSystem', () => {
  it('implies directories from file paths', async () => {
    const fs = new MemoryFileSystem({ 'a/b/c.yaml': 'c', 'a/d.yaml': 'd', 'e.yaml': 'e' });
    expect(await fs.listDir('')).toEqual(['a', 'e.yaml']);
    expect(await fs.listDir('a')).toEqual(['b', 'd.yaml']);
    expect(await fs.isDirectory('a/b')).toBe(true);
    expect(await fs.exists('a/b/c.yaml')).toBe(true);
    expect(await fs.readFile('a/./b/../d.yaml')).toBe('d');
    await expect(fs.readFile('a')).rejects.toThrow('is a directory');
    await expect(fs.readFile('../x')).rejects.toThrow('climbs above');
  });
});
