import { realpathSync } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { posix, sep, join } from 'node:path';
import { RenderError } from './kustomize/errors.js';
import type { RepoFileSystem } from './types.js';

/** Largest file the renderer reads; config files are small, anything bigger is refused, not parsed. */
export const MAX_REPO_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Normalizes a repository-relative path (`a/./b/../c` → `a/c`, root → ``).
 * Refuses absolute paths, NUL bytes and `..` that climbs past the repository root.
 */
export function normalizeRepoPath(path: string): string {
  if (path.includes('\0')) throw escape(path, 'contains a NUL byte');
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path)) {
    throw escape(path, 'is absolute; paths must be relative to the repository root');
  }
  const normalized = posix.normalize(path.replace(/\\/g, '/'));
  if (normalized === '..' || normalized.startsWith('../')) throw escape(path, 'climbs above the repository root');
  if (normalized === '.' || normalized === './') return '';
  return normalized.replace(/\/+$/, '').replace(/^\.\//, '');
}

/** Joins a repository-relative directory and a relative reference found in a file inside it. */
export function joinRepoPath(dir: string, ref: string): string {
  if (ref.startsWith('/') || /^[A-Za-z]:[\\/]/.test(ref)) throw escape(ref, 'is absolute; paths must be relative to the repository root');
  return normalizeRepoPath(dir === '' ? ref : `${dir}/${ref}`);
}

function escape(path: string, why: string): RenderError {
  return RenderError.at('PathEscape', { file: path || '.' }, `path ${JSON.stringify(path)} ${why}`);
}

/**
 * A checkout on disk, read-only. Every access resolves symlinks and refuses a target outside the
 * root, so a hostile repository cannot make the renderer read `/etc/passwd` (STYLE.md §10).
 */
export class DiskFileSystem implements RepoFileSystem {
  readonly root: string;

  constructor(root: string) {
    this.root = realpathSync(root);
  }

  async readFile(path: string): Promise<string> {
    const full = await this.resolve(path);
    if (full === undefined) throw RenderError.at('NotFound', { file: normalizeRepoPath(path) || '.' }, 'file not found');
    const info = await stat(full);
    if (info.isDirectory()) throw RenderError.at('NotFound', { file: normalizeRepoPath(path) }, 'is a directory, not a file');
    if (info.size > MAX_REPO_FILE_BYTES) {
      throw RenderError.at('TooLarge', { file: normalizeRepoPath(path) }, `file is ${info.size} bytes; the limit is ${MAX_REPO_FILE_BYTES}`);
    }
    return readFile(full, 'utf8');
  }

  async exists(path: string): Promise<boolean> {
    return (await this.resolve(path)) !== undefined;
  }

  async isDirectory(path: string): Promise<boolean> {
    const full = await this.resolve(path);
    return full !== undefined && (await stat(full)).isDirectory();
  }

  async listDir(path: string): Promise<string[]> {
    const full = await this.resolve(path);
    if (full === undefined) throw RenderError.at('NotFound', { file: normalizeRepoPath(path) || '.' }, 'directory not found');
    return (await readdir(full)).sort();
  }

  /** The real path inside the root, `undefined` when nothing is there; throws when it escapes. */
  private async resolve(path: string): Promise<string | undefined> {
    const rel = normalizeRepoPath(path);
    let real: string;
    try {
      real = await realpath(join(this.root, rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
    if (real !== this.root && !real.startsWith(this.root + sep)) {
      throw escape(rel, 'is a symlink (or passes through one) that resolves outside the repository');
    }
    return real;
  }
}

/** An in-memory tree for tests and for rendering blobs read straight from git. Directories are implied by file paths. */
export class MemoryFileSystem implements RepoFileSystem {
  private readonly files = new Map<string, string>();

  constructor(files: Record<string, string> = {}) {
    for (const [path, content] of Object.entries(files)) this.writeFile(path, content);
  }

  writeFile(path: string, content: string): void {
    const rel = normalizeRepoPath(path);
    if (rel === '') throw escape(path, 'names the root, not a file');
    this.files.set(rel, content);
  }

  deleteFile(path: string): void {
    this.files.delete(normalizeRepoPath(path));
  }

  async readFile(path: string): Promise<string> {
    const rel = normalizeRepoPath(path);
    const content = this.files.get(rel);
    if (content === undefined) {
      throw RenderError.at('NotFound', { file: rel || '.' }, this.hasDir(rel) ? 'is a directory, not a file' : 'file not found');
    }
    if (Buffer.byteLength(content) > MAX_REPO_FILE_BYTES) {
      throw RenderError.at('TooLarge', { file: rel }, `file is ${Buffer.byteLength(content)} bytes; the limit is ${MAX_REPO_FILE_BYTES}`);
    }
    return content;
  }

  async exists(path: string): Promise<boolean> {
    const rel = normalizeRepoPath(path);
    return this.files.has(rel) || this.hasDir(rel);
  }

  async isDirectory(path: string): Promise<boolean> {
    return this.hasDir(normalizeRepoPath(path));
  }

  async listDir(path: string): Promise<string[]> {
    const rel = normalizeRepoPath(path);
    if (!this.hasDir(rel)) throw RenderError.at('NotFound', { file: rel || '.' }, 'directory not found');
    const prefix = rel === '' ? '' : `${rel}/`;
    const names = new Set<string>();
    for (const file of this.files.keys()) {
      if (file.startsWith(prefix)) names.add(file.slice(prefix.length).split('/')[0]);
    }
    return [...names].sort();
  }

  private hasDir(rel: string): boolean {
    if (rel === '') return true;
    const prefix = `${rel}/`;
    for (const file of this.files.keys()) if (file.startsWith(prefix)) return true;
    return false;
  }
}
