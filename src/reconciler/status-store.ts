import type { ClusterStatusStatus } from '../mesh/api/trellis.js';

/** Deduplicated reconcile history entry (STYLE.md §14): upserted by (commit, outcome), capped. */
export interface HistoryEntry {
  commit: string;
  outcome: 'applied' | 'refused' | 'failed';
  count: number;
  firstAt: string;
  lastAt: string;
  message?: string;
}

export const MAX_HISTORY = 5;

/** The source side of the fleet status: what git says and what the operator did with it. */
export interface SourceStatus {
  url: string;
  ref: string;
  lastAppliedCommit?: string;
  lastAppliedAt?: string;
  lastAttemptedCommit?: string;
  lastAttemptedAt?: string;
  /** Set while fetching/checking out keeps failing; the last good config stays in force. */
  fault?: { reason: string; message: string; since: string; failures: number };
  /** Set while the tracked commit is refused (invalid config). */
  refused?: { commit: string; errors: string[] };
  historyRewritten?: { from: string; to: string; at: string };
  history: HistoryEntry[];
}

/** `/v1/status`: the whole fleet as JSON. */
export interface FleetStatus {
  source: SourceStatus;
  clusters: Record<string, ClusterStatusStatus>;
  leader?: { identity: string; isLeader: boolean };
}

export type StatusListener = (changedClusters: string[]) => void;

/**
 * The operator's in-memory status: one ClusterStatusStatus per cluster plus the source status.
 * Writers (git, Kubernetes, HTTP) subscribe; the reconciler, rollout engine and discovery update.
 */
export class StatusStore {
  private readonly clusterMap = new Map<string, ClusterStatusStatus>();
  private readonly listeners = new Set<StatusListener>();
  source: SourceStatus;

  /**
   * `owns` limits the store to the clusters this operator manages: with one operator per cluster,
   * each writes only its own status files and never overwrites another's (verified versions!).
   */
  constructor(source: { url: string; ref: string }, private readonly owns: (cluster: string) => boolean = () => true) {
    this.source = { ...source, history: [] };
  }

  clusters(): string[] {
    return [...this.clusterMap.keys()].sort();
  }

  get(cluster: string): ClusterStatusStatus | undefined {
    const s = this.clusterMap.get(cluster);
    return s ? structuredClone(s) : undefined;
  }

  /** Replaces one cluster's status with what `fn` returns (it receives a copy); listeners hear of it. */
  update(cluster: string, fn: (current: ClusterStatusStatus) => ClusterStatusStatus): void {
    this.updateMany([cluster], fn);
  }

  /** One notification for several clusters (a burst is one event). */
  updateMany(clusters: Iterable<string>, fn: (current: ClusterStatusStatus, cluster: string) => ClusterStatusStatus): void {
    const changed: string[] = [];
    for (const cluster of clusters) {
      if (!this.owns(cluster)) continue;
      const before = this.clusterMap.get(cluster);
      const next = fn(structuredClone(before ?? {}), cluster);
      if (before && JSON.stringify(before) === JSON.stringify(next)) continue;
      this.clusterMap.set(cluster, next);
      changed.push(cluster);
    }
    if (changed.length) this.emit(changed);
  }

  /** Forgets clusters (removed from the fleet); writers delete their status. */
  remove(clusters: Iterable<string>): void {
    const removed = [...clusters].filter((c) => this.owns(c) && this.clusterMap.delete(c));
    if (removed.length) this.emit(removed);
  }

  updateSource(fn: (s: SourceStatus) => SourceStatus): void {
    this.source = fn(structuredClone(this.source));
  }

  recordHistory(entry: { commit: string; outcome: HistoryEntry['outcome']; message?: string }, now: Date): void {
    this.updateSource((s) => {
      const at = now.toISOString();
      const existing = s.history.find((h) => h.commit === entry.commit && h.outcome === entry.outcome);
      if (existing) {
        existing.count += 1;
        existing.lastAt = at;
        existing.message = entry.message;
        s.history = [existing, ...s.history.filter((h) => h !== existing)];
      } else s.history = [{ ...entry, count: 1, firstAt: at, lastAt: at }, ...s.history].slice(0, MAX_HISTORY);
      return s;
    });
  }

  snapshot(): FleetStatus {
    const clusters: Record<string, ClusterStatusStatus> = {};
    for (const name of this.clusters()) clusters[name] = structuredClone(this.clusterMap.get(name)!);
    return { source: structuredClone(this.source), clusters };
  }

  subscribe(listener: StatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(changed: string[]): void {
    for (const l of this.listeners) {
      try {
        l(changed);
      } catch {
        // A writer's bug must not break status updates for the others.
      }
    }
  }
}
