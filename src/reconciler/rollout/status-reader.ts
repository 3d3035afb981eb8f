import { parse } from 'yaml';
import type { ClusterStatusStatus } from '../../mesh/api/index.js';
import { errorMessage } from '../errors.js';
import type { BranchPublisher } from './branch-publisher.js';

/**
 * Reads other operators' ClusterStatus files from the status branch, so that an operator that
 * manages only some clusters still sees which versions the previous stage verified. The gate
 * therefore holds across operator instances, with git as the only shared state.
 */
export class StatusBranchReader {
  private verified = new Map<string, string[]>();
  private lastError?: string;

  constructor(private readonly opts: { publisher: BranchPublisher; branch: string }) {}

  verifiedVersions(cluster: string): readonly string[] {
    return this.verified.get(cluster) ?? [];
  }

  get error(): string | undefined {
    return this.lastError;
  }

  /** Fetches the status branch and re-reads every status/<cluster>.yaml; a missing branch means nothing verified yet. */
  async refresh(): Promise<void> {
    try {
      const tree = await this.opts.publisher.readBranch(this.opts.branch);
      const next = new Map<string, string[]>();
      if (tree && (await tree.isDirectory('status'))) {
        for (const name of await tree.listDir('status')) {
          if (!name.endsWith('.yaml')) continue;
          const doc = parse(await tree.readFile(`status/${name}`)) as { spec?: { cluster?: string }; status?: ClusterStatusStatus } | null;
          const cluster = doc?.spec?.cluster ?? name.replace(/\.yaml$/, '');
          next.set(cluster, doc?.status?.verifiedVersions ?? []);
        }
      }
      this.verified = next;
      this.lastError = undefined;
    } catch (err) {
      this.lastError = errorMessage(err);
    }
  }
}
