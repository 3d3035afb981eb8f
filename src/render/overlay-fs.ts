import { normalizeRepoPath } from './fs.js';
import type { RepoFileSystem } from './types.js';

/**
 * A repository view with some files replaced or added in memory, over a read-only base. Used to
 * validate a change (an upgrade, a promotion, a revert) before anything is written or committed,
 * and to render a cluster at another version without touching the checkout.
 */
export class OverlayFileSystem implements RepoFileSystem {
  private readonly files = new Map<string, string>();

  constructor(private readonly base: RepoFileSystem, changes: ReadonlyMap<string, string> | Record<string, string> = {}) {
    const entries = changes instanceof Map ? [...changes.entries()] : Object.entries(changes);
    for (const [path, text] of entries) this.files.set(normalizeRepoPath(path), text);
  }

  async readFile(path: string): Promise<string> {
    const own = this.files.get(normalizeRepoPath(path));
    return own ?? this.base.readFile(path);
  }

  async exists(path: string): Promise<boolean> {
    const rel = normalizeRepoPath(path);
    return this.files.has(rel) || this.isOwnDirectory(rel) || this.base.exists(path);
  }

  async isDirectory(path: string): Promise<boolean> {
    const rel = normalizeRepoPath(path);
    if (this.files.has(rel)) return false;
    return this.isOwnDirectory(rel) || this.base.isDirectory(path);
  }

  async listDir(path: string): Promise<string[]> {
    const rel = normalizeRepoPath(path);
    const names = new Set<string>();
    if (await this.base.isDirectory(path)) for (const n of await this.base.listDir(path)) names.add(n);
    const prefix = rel === '' ? '' : `${rel}/`;
    for (const file of this.files.keys()) {
      if (file.startsWith(prefix)) names.add(file.slice(prefix.length).split('/')[0]);
    }
    return [...names].sort();
  }

  private isOwnDirectory(rel: string): boolean {
    const prefix = rel === '' ? '' : `${rel}/`;
    for (const file of this.files.keys()) if (file.startsWith(prefix)) return true;
    return false;
  }
}
