import type { Logger } from 'pino';
import type { ClusterStatusStatus } from '../mesh/api/trellis.js';
import { errorMessage } from './errors.js';
import type { OperatorMetrics } from './metrics.js';
import { Backoff, type BackoffOptions } from './schedule.js';
import { statusCommitMessage, statusSummaryKey } from './status-format.js';
import type { StatusStore } from './status-store.js';

/** A batch of meaningful status transitions, coalesced. */
export interface StatusBatch {
  /** Changed clusters with their full current status. */
  changed: Array<{ cluster: string; status: ClusterStatusStatus }>;
  /** Clusters no longer in the fleet: their status is deleted. */
  removed: string[];
  /** Human message (git commit message). */
  message: string;
}

/** Where status goes: the git status branch, Kubernetes ClusterStatus resources, … */
export interface StatusSink {
  readonly name: string;
  write(batch: StatusBatch): Promise<void>;
}

/** Changes within this window are written together (one commit for a burst). */
export const DEFAULT_STATUS_COALESCE_MS = 200;

interface SinkState {
  sink: StatusSink;
  written: Map<string, string>;
  inFlight?: Promise<void>;
  retryTimer?: NodeJS.Timeout;
  backoff: Backoff;
  lastError?: string;
}

/**
 * Subscribes to the StatusStore and writes meaningful transitions to every sink: bursts are
 * coalesced, unchanged summaries are skipped, failed writes are retried with backoff (the latest
 * state is what gets written, never a stale queue). Disabled while this replica is not the leader.
 */
export class StatusPublisher {
  private readonly sinks: SinkState[] = [];
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private enabled = true;
  private closed = false;

  constructor(
    private readonly store: StatusStore,
    private readonly opts: { coalesceMs?: number; backoff?: BackoffOptions; logger?: Logger; metrics?: OperatorMetrics } = {},
  ) {
    this.unsubscribe = store.subscribe(() => this.schedule());
  }

  addSink(sink: StatusSink): void {
    this.sinks.push({ sink, written: new Map(), backoff: new Backoff(this.opts.backoff ?? { initialMs: 500, maxMs: 60_000, factor: 2 }) });
    this.schedule();
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    if (enabled) this.schedule();
  }

  /** Last write error per sink (for /v1/status). */
  errors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of this.sinks) if (s.lastError) out[s.sink.name] = s.lastError;
    return out;
  }

  /** Writes pending changes now and waits for every sink (tests, shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.sinks.map((s) => this.flushSink(s)));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    for (const s of this.sinks) clearTimeout(s.retryTimer);
    await Promise.all(this.sinks.map((s) => s.inFlight));
  }

  private schedule(): void {
    if (this.closed || !this.enabled || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      for (const s of this.sinks) void this.flushSink(s);
    }, this.opts.coalesceMs ?? DEFAULT_STATUS_COALESCE_MS);
  }

  private async flushSink(state: SinkState): Promise<void> {
    if (this.closed || !this.enabled) return;
    while (state.inFlight) await state.inFlight;
    const changed: StatusBatch['changed'] = [];
    const keys = new Map<string, string>();
    for (const cluster of this.store.clusters()) {
      const status = this.store.get(cluster)!;
      const key = statusSummaryKey(status);
      if (state.written.get(cluster) === key) continue;
      changed.push({ cluster, status });
      keys.set(cluster, key);
    }
    const present = new Set(this.store.clusters());
    const removed = [...state.written.keys()].filter((c) => !present.has(c)).sort();
    if (changed.length === 0 && removed.length === 0) return;
    clearTimeout(state.retryTimer);
    state.retryTimer = undefined;
    const message = changed.length
      ? statusCommitMessage(changed) + (removed.length ? `\nremoved from the fleet: ${removed.join(', ')}\n` : '')
      : `${removed.join(', ')}: removed from the fleet\n`;
    const batch: StatusBatch = { changed, removed, message };
    state.inFlight = (async () => {
      try {
        await state.sink.write(batch);
        for (const [cluster, key] of keys) state.written.set(cluster, key);
        for (const cluster of removed) state.written.delete(cluster);
        state.backoff.reset();
        state.lastError = undefined;
        this.opts.metrics?.statusWrites.inc({ writer: state.sink.name, result: 'success' });
        this.opts.logger?.info({ writer: state.sink.name, clusters: changed.map((c) => c.cluster), removed, message: batch.message.split('\n')[0] }, 'status written');
      } catch (err) {
        state.lastError = errorMessage(err);
        this.opts.metrics?.statusWrites.inc({ writer: state.sink.name, result: 'error' });
        const delay = state.backoff.next();
        this.opts.logger?.warn({ writer: state.sink.name, err: state.lastError, retryInMs: delay }, 'status write failed; will retry');
        if (!this.closed) state.retryTimer = setTimeout(() => void this.flushSink(state), delay);
      }
    })();
    try {
      await state.inFlight;
    } finally {
      state.inFlight = undefined;
    }
  }
}
