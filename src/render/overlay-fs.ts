import { MemoryFileSystem } from './fs.js';
import type { RepoFileSystem } from './types.js';

/**
 * A repository view with some files replaced or added in memory, over a read-only base. Used to
 * validate a change (an upgrade, a promotion, a revert) before anything is written or committed,
 * and to render a cluster at another version without touching the checkout.
 */
export class OverlayFileSystem implements RepoFileSystem {
  private readonly changes: MemoryFileSystem;

  constructor(private readonly base: RepoFileSystem, changes: ReadonlyMap<string, string> | Record<string, string> = {}) {
    this.changes = new MemoryFileSystem(changes instanceof Map ? Object.fromEntries(changes) : (changes as Record<string, string>));
  }

  private async isChangedFile(path: string): Promise<boolean> {
    return (await this.changes.exists(path)) && !(await this.changes.isDirectory(path));
  }

  async readFile(path: string): Promise<string> {
    return (await this.isChangedFile(path)) ? this.changes.readFile(path) : this.base.readFile(path);
  }

  async exists(path: string): Promise<boolean> {
    return (await this.changes.exists(path)) || this.base.exists(path);
  }

  async isDirectory(path: string): Promise<boolean> {
    if (await this.isChangedFile(path)) return false;
    return (await this.changes.isDirectory(path)) || this.base.isDirectory(path);
  }

  async listDir(path: string): Promise<string[]> {
    const names = new Set<string>();
    if (await this.base.isDirectory(path)) for (const n of await this.base.listDir(path)) names.add(n);
    if (await this.changes.isDirectory(path)) for (const n of await this.changes.listDir(path)) names.add(n);
    return [...names].sort();
  }
}
