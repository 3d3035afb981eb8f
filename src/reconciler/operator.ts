import { join } from 'node:path';
import type { SignaturePolicy } from './commit-signature.js';
import { pino, type Logger } from 'pino';
import type { GitAuth } from './credentials.js';
import { errorMessage } from './errors.js';
import { GitSource, refLabel, type TrackedRef } from './git-source.js';
import { DEFAULT_STATUS_BRANCH, GitStatusWriter } from './git-status-writer.js';
import { defaultNamespace, loadKubeConfig } from './kube-client.js';
import { DEFAULT_STATUS_NAMESPACE, KubeStatusWriter } from './kube-status-writer.js';
import { AlwaysLeader, DEFAULT_LEADER_TIMING, FileLockElector, KubeLeaseElector, defaultIdentity, type LeaderElector, type LeaderTiming } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { startOperatorServer, type OperatorHttpHandlers } from './operator-server.js';
import { Reconciler, type ApplyListener, type LoadRepository, type ReconcileResult } from './reconciler.js';
import { ReconcileLoop, type BackoffOptions, type Schedule } from './schedule.js';
import { StatusPublisher } from './status-publisher.js';
import { StatusStore, type FleetStatus } from './status-store.js';

/** How long shutdown waits for the last status write. */
export const STOP_FLUSH_TIMEOUT_MS = 5_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}

export interface OperatorOptions {
  /** Smart-HTTP(S) URL or local repository path of the config repository. */
  repo: string;
  ref?: TrackedRef;
  /** Default: every 30 s. */
  schedule?: Schedule;
  /** Clone cache, snapshots, status clone, lock file. */
  stateDir: string;
  host?: string;
  port?: number;
  /** HMAC secret of POST /hooks/git; without it the webhook answers 404. */
  webhookSecret?: string;
  auth?: GitAuth;
  /** PEM CA bundle for an https:// repository with a private CA. */
  gitCa?: string | Buffer;
  /** Deadline of one git network operation (default 60 s). */
  timeoutMs?: number;
  /** Status branch name (default `trellis-status`); false: no git status. */
  statusBranch?: string | false;
  /** Enables the Kubernetes status writer and Lease election: a kubeconfig path or `in-cluster`. */
  kubeconfig?: string;
  kubeNamespace?: string;
  /** `auto` (default): a Lease with a kubeconfig, otherwise a lock file in stateDir. */
  leaderElection?: 'auto' | 'file' | 'lease' | 'none';
  identity?: string;
  leaderTiming?: LeaderTiming;
  logger?: Logger;
  /** Renders a checkout (default: loadRepositoryFromDir). */
  load?: LoadRepository;
  /** See ReconcilerOptions.appliedIsCurrent (default true until a rollout engine manages phases). */
  appliedIsCurrent?: boolean;
  backoff?: BackoffOptions;
  webhookDebounceMs?: number;
  statusCoalesceMs?: number;
  /** Clusters this instance manages; status is kept and written for these only (default: all). */
  clusters?: string[];
  /** More HTTP routes on the operator's port (see OperatorHttpHandlers.extra). */
  httpExtra?: OperatorHttpHandlers['extra'];
  /** Apply only commits signed by these keys (see ReconcilerOptions.signaturePolicy). */
  signaturePolicy?: SignaturePolicy;
}

/**
 * `trellis operator`: git source → reconcile loop (schedule + webhook) → onApply subscribers,
 * status store → git and Kubernetes writers, HTTP endpoints, leader election.
 */
export class Operator {
  readonly source: GitSource;
  readonly status: StatusStore;
  readonly metrics: OperatorMetrics;
  readonly reconciler: Reconciler;
  readonly loop: ReconcileLoop;
  readonly publisher: StatusPublisher;
  readonly elector: LeaderElector;
  readonly gitStatusWriter?: GitStatusWriter;
  readonly kubeStatusWriter?: KubeStatusWriter;
  readonly logger: Logger;
  private http?: Awaited<ReturnType<typeof startOperatorServer>>;
  private firstRunDone = false;
  private lastResult?: ReconcileResult;
  private readonly resultWaiters: Array<(r: ReconcileResult) => void> = [];
  private readonly resultListeners = new Set<(r: ReconcileResult) => void>();

  constructor(private readonly opts: OperatorOptions) {
    this.logger = opts.logger ?? pino({ name: 'trellis-operator' });
    const statusBranch = opts.statusBranch === false ? undefined : (opts.statusBranch ?? DEFAULT_STATUS_BRANCH);
    const ref = opts.ref ?? { branch: 'main' };
    if (statusBranch && 'branch' in ref && ref.branch === statusBranch) {
      throw new Error(`--status-branch ${statusBranch} is the tracked branch: the operator would reconcile on its own status commits`);
    }
    this.source = new GitSource({ repo: opts.repo, ref, cacheDir: join(opts.stateDir, 'source'), auth: opts.auth, ca: opts.gitCa, timeoutMs: opts.timeoutMs });
    const owned = opts.clusters ? new Set(opts.clusters) : undefined;
    this.status = new StatusStore({ url: this.source.redact(this.source.url), ref: refLabel(ref) }, owned ? (c) => owned.has(c) : undefined);
    this.metrics = new OperatorMetrics({ defaultMetrics: true, wire: () => this.source.wire });
    this.reconciler = new Reconciler({
      source: this.source,
      status: this.status,
      load: opts.load,
      logger: this.logger,
      metrics: this.metrics,
      appliedIsCurrent: opts.appliedIsCurrent ?? true,
      signaturePolicy: opts.signaturePolicy,
    });
    this.loop = new ReconcileLoop({
      schedule: opts.schedule ?? { intervalMs: 30_000 },
      backoff: opts.backoff,
      debounceMs: opts.webhookDebounceMs,
      run: async (trigger) => {
        const result = await this.reconciler.reconcile(trigger);
        this.firstRunDone = true;
        this.lastResult = result;
        for (const w of this.resultWaiters.splice(0)) w(result);
        for (const l of this.resultListeners) l(result);
        return result;
      },
      onError: (err) => this.logger.error({ err: errorMessage(err) }, 'reconcile loop error'),
    });
    this.publisher = new StatusPublisher(this.status, { coalesceMs: opts.statusCoalesceMs, logger: this.logger, metrics: this.metrics });
    if (statusBranch) {
      this.gitStatusWriter = new GitStatusWriter({ repo: opts.repo, branch: statusBranch, cacheDir: join(opts.stateDir, 'status'), auth: opts.auth, ca: opts.gitCa, timeoutMs: opts.timeoutMs });
      this.publisher.addSink(this.gitStatusWriter);
    }
    const kc = opts.kubeconfig ? loadKubeConfig(opts.kubeconfig) : undefined;
    const namespace = opts.kubeNamespace ?? process.env.POD_NAMESPACE ?? (kc ? defaultNamespace(kc, DEFAULT_STATUS_NAMESPACE) : DEFAULT_STATUS_NAMESPACE);
    if (kc) {
      this.kubeStatusWriter = new KubeStatusWriter(kc, { namespace });
      this.publisher.addSink(this.kubeStatusWriter);
    }
    const identity = opts.identity ?? process.env.POD_NAME ?? defaultIdentity();
    const mode = opts.leaderElection ?? 'auto';
    const timing = opts.leaderTiming ?? DEFAULT_LEADER_TIMING;
    if (mode === 'none') this.elector = new AlwaysLeader();
    else if (mode === 'lease' || (mode === 'auto' && kc)) {
      if (!kc) throw new Error('--leader-election lease needs --kubeconfig');
      this.elector = new KubeLeaseElector(kc, namespace, 'trellis-operator', identity, timing);
    } else this.elector = new FileLockElector(join(opts.stateDir, 'leader.lock'), identity, timing);
    this.publisher.setEnabled(false);
  }

  /** Subscribes to applied commits (see Reconciler.onApply). */
  onApply(listener: ApplyListener): () => void {
    return this.reconciler.onApply(listener);
  }

  get url(): string {
    if (!this.http) throw new Error('operator not started');
    return this.http.url;
  }
  get port(): number {
    if (!this.http) throw new Error('operator not started');
    return this.http.port;
  }

  /** Serves HTTP, then campaigns for leadership; the leader starts the reconcile loop. */
  async start(): Promise<void> {
    this.http = await startOperatorServer(
      {
        status: () => this.fleetStatus(),
        ready: () => this.readiness(),
        registry: this.metrics.registry,
        extra: this.opts.httpExtra,
        webhook: {
          secret: this.opts.webhookSecret,
          trackedRef: 'commit' in this.source.ref ? undefined : this.source.fullRef,
          ignoredRefs: this.gitStatusWriter ? [this.gitStatusWriter.fullRef] : [],
          onAccepted: (event) => {
            this.metrics.webhooks.inc({ result: 'accepted' });
            this.logger.info({ event: event.event, ref: event.ref, delivery: event.delivery, leader: this.elector.isLeader() }, 'webhook accepted');
            if (this.elector.isLeader()) this.loop.trigger('webhook');
          },
          onRejected: (reason, status) => {
            this.metrics.webhooks.inc({ result: status === 401 ? 'rejected' : status === 503 ? 'standby' : 'invalid' });
            this.logger.warn({ reason, status }, 'webhook rejected');
          },
          standby: () =>
            this.elector.isLeader()
              ? undefined
              : { reason: `this replica (${this.elector.identity}) is not the leader; retry`, retryAfterSeconds: (this.opts.leaderTiming ?? DEFAULT_LEADER_TIMING).renewIntervalMs / 1000 },
        },
      },
      { host: this.opts.host, port: this.opts.port },
    );
    this.elector.onChange((leader) => this.onLeadership(leader));
    await this.elector.start();
    if (this.elector.isLeader() && !this.leading) this.onLeadership(true);
    this.logger.info({ url: this.http.url, port: this.http.port, source: this.source.description, identity: this.elector.identity, leader: this.elector.isLeader() }, 'operator started');
  }

  private leading = false;
  private onLeadership(leader: boolean): void {
    if (leader === this.leading) return;
    this.leading = leader;
    this.metrics.leader.set(leader ? 1 : 0);
    this.logger.info({ identity: this.elector.identity, leader }, leader ? 'became leader' : 'lost leadership');
    this.publisher.setEnabled(leader);
    if (leader) this.loop.start();
    else void this.loop.stop();
  }

  /** Hears every reconcile result (outcome, commit, step timings); returns an unsubscribe function. */
  onReconcile(listener: (r: ReconcileResult) => void): () => void {
    this.resultListeners.add(listener);
    return () => this.resultListeners.delete(listener);
  }

  /** Triggers a reconcile now (like a webhook) and resolves with its result. */
  reconcileNow(): Promise<ReconcileResult> {
    return new Promise((resolve) => {
      this.resultWaiters.push(resolve);
      this.loop.trigger('manual');
    });
  }

  fleetStatus(): FleetStatus & { operator: Record<string, unknown> } {
    const snap = this.status.snapshot();
    return {
      ...snap,
      leader: { identity: this.elector.identity, isLeader: this.elector.isLeader() },
      operator: {
        lastResult: this.lastResult ? { result: this.lastResult.result, commit: this.lastResult.commit, error: this.lastResult.error?.message } : undefined,
        consecutiveFailures: this.loop.consecutiveFailures,
        statusWriterErrors: this.publisher.errors(),
        statusBranch: this.gitStatusWriter?.branch,
        lastStatusCommit: this.gitStatusWriter?.lastCommit,
      },
    };
  }

  private readiness(): { ready: boolean; reason?: string } {
    if (!this.http) return { ready: false, reason: 'starting' };
    if (!this.elector.isLeader()) return { ready: true, reason: 'standby (not the leader)' };
    if (!this.firstRunDone) return { ready: false, reason: 'first reconcile in progress' };
    return { ready: true };
  }

  /** Stops the loop (waiting for a run in flight), flushes status, releases leadership, closes HTTP. */
  async stop(): Promise<void> {
    this.source.cancel();
    await this.loop.stop();
    // A last status write, bounded: shutdown must fit the pod's grace period even if git hangs.
    if (this.elector.isLeader()) await withTimeout(this.publisher.flush(), STOP_FLUSH_TIMEOUT_MS).catch(() => undefined);
    await withTimeout(this.publisher.close(), STOP_FLUSH_TIMEOUT_MS).catch(() => undefined);
    await this.elector.stop();
    await this.http?.close();
    this.logger.info('operator stopped');
  }
}
