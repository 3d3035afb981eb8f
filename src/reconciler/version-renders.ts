import type { FleetSpec } from '../mesh/api/index.js';
import type { RenderCache } from '../render/cache.js';
import { formatDiagnostic } from '../mesh/object.js';
import { DiskFileSystem } from '../render/fs.js';
import { OverlayFileSystem } from '../render/overlay-fs.js';
import { loadRepository } from '../render/repository.js';
import type { ClusterRender, RepositoryRender } from '../render/types.js';
import { planOverlayBumps } from './rollout/plan.js';

/**
 * Cluster renders per mesh version for the commit in force. During a canary a cluster runs two
 * versions at once: the one its overlay names (from the commit's render) and the stable one,
 * rendered from the same commit with the overlay pointed back at it in memory — today's base
 * with the old version's folder, exactly what a revert commit would produce. A version whose
 * folder is gone from the commit falls back to the newest render of it seen earlier.
 * With the reconciler's render cache, such a render re-builds only the overlay it points back:
 * every other file and build of the commit was rendered (and cached) when it was applied.
 */
export class VersionRenders {
  constructor(private readonly cache?: RenderCache) {}

  private commit?: string;
  private snapshotDir?: string;
  private fleet?: FleetSpec;
  private readonly current = new Map<string, Promise<ClusterRender>>();
  private readonly lastKnown = new Map<string, ClusterRender>();

  setCommit(commit: string, snapshotDir: string, render: RepositoryRender): void {
    this.commit = commit;
    this.snapshotDir = snapshotDir;
    this.fleet = render.fleet.spec;
    this.current.clear();
    for (const c of render.clusters) {
      this.current.set(key(c.cluster, c.version), Promise.resolve(c));
      this.lastKnown.set(key(c.cluster, c.version), c);
    }
  }

  get commitInForce(): string | undefined {
    return this.commit;
  }

  /** The cluster's render at `version` for the commit in force. */
  get(cluster: string, version: string): Promise<ClusterRender> {
    const k = key(cluster, version);
    let pending = this.current.get(k);
    if (!pending) {
      pending = this.renderAt(cluster, version).then(
        (r) => {
          this.lastKnown.set(k, r);
          return r;
        },
        (err: unknown) => {
          this.current.delete(k);
          const earlier = this.lastKnown.get(k);
          if (earlier) return earlier;
          throw err;
        },
      );
      this.current.set(k, pending);
    }
    return pending;
  }

  private async renderAt(cluster: string, version: string): Promise<ClusterRender> {
    if (!this.snapshotDir || !this.fleet) throw new Error('no commit applied yet');
    const base = new DiskFileSystem(this.snapshotDir);
    const changes = await planOverlayBumps(base, this.fleet, [cluster], version);
    const render = await loadRepository(new OverlayFileSystem(base, changes), { cache: this.cache });
    const errors = render.errors.filter((d) => d.severity === 'error');
    const found = render.clusters.find((c) => c.cluster === cluster);
    if (errors.length > 0 || !found) {
      throw new Error(`cluster ${cluster} does not render at ${version}: ${errors.slice(0, 3).map(formatDiagnostic).join('; ') || 'not rendered'}`);
    }
    return found;
  }
}

function key(cluster: string, version: string): string {
  return `${cluster}@${version}`;
}
