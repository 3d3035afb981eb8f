import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The operator's Prometheus metrics, on their own registry (served at /metrics). */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<'result'>;
  readonly reconcileDuration: Histogram<'result'>;
  readonly errors: Counter<'reason'>;
  readonly lastAppliedInfo: Gauge<'commit' | 'ref'>;
  readonly lastAppliedTimestamp: Gauge;
  readonly pollDuration: Histogram<'result'>;
  readonly gitRequests: Gauge;
  readonly gitBytesReceived: Gauge;
  readonly webhooks: Counter<'result'>;
  readonly statusWrites: Counter<'writer' | 'result'>;
  readonly leader: Gauge;
  private lastAppliedAt?: number;

  constructor(opts: { defaultMetrics?: boolean; wire?: () => { requests: number; bytesIn: number } } = {}) {
    const registers = [this.registry];
    this.reconciles = new Counter({ name: 'trellis_reconciles_total', help: 'Reconcile runs by result (applied, unchanged, stalled, waiting, transient).', labelNames: ['result'], registers });
    this.reconcileDuration = new Histogram({
      name: 'trellis_reconcile_duration_seconds',
      help: 'Duration of a reconcile run: detect change, fetch, checkout, validate, render, hand over.',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.errors = new Counter({ name: 'trellis_reconcile_errors_total', help: 'Reconcile failures by reason (GitOperationFailed, InvalidConfig, …).', labelNames: ['reason'], registers });
    this.lastAppliedInfo = new Gauge({ name: 'trellis_last_applied_commit_info', help: 'The commit in force (value 1, commit and ref as labels).', labelNames: ['commit', 'ref'], registers });
    this.lastAppliedTimestamp = new Gauge({ name: 'trellis_last_applied_timestamp_seconds', help: 'When the commit in force was applied (Unix seconds).', registers });
    const self = this;
    new Gauge({
      name: 'trellis_last_applied_age_seconds',
      help: 'Seconds since the commit in force was applied (-1 before the first apply).',
      registers,
      collect() {
        this.set(self.lastAppliedAt === undefined ? -1 : (Date.now() - self.lastAppliedAt) / 1000);
      },
    });
    this.pollDuration = new Histogram({
      name: 'trellis_git_poll_duration_seconds',
      help: 'Latency of asking the remote for the tracked ref (and fetching when it moved).',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const wire = opts.wire;
    this.gitRequests = new Gauge({ name: 'trellis_git_requests', help: 'HTTP requests sent to the git remote since start.', registers, collect() { if (wire) this.set(wire().requests); } });
    this.gitBytesReceived = new Gauge({ name: 'trellis_git_received_bytes', help: 'Bytes received from the git remote since start.', registers, collect() { if (wire) this.set(wire().bytesIn); } });
    this.webhooks = new Counter({ name: 'trellis_webhook_requests_total', help: 'Webhook requests by result (accepted, ignored, rejected).', labelNames: ['result'], registers });
    this.statusWrites = new Counter({ name: 'trellis_status_writes_total', help: 'Status writes by writer (git, kubernetes) and result.', labelNames: ['writer', 'result'], registers });
    this.leader = new Gauge({ name: 'trellis_leader', help: '1 when this replica holds the leader lock.', registers });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'trellis_process_' });
  }

  markApplied(commit: string, ref: string, at: Date): void {
    this.lastAppliedInfo.reset();
    this.lastAppliedInfo.set({ commit, ref }, 1);
    this.lastAppliedTimestamp.set(at.getTime() / 1000);
    this.lastAppliedAt = at.getTime();
  }
}
