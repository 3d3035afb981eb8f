import type { Logger } from 'pino';
import type { ClusterStatusStatus } from '../mesh/api/trellis.js';
import { formatDiagnostic } from '../mesh/object.js';
import { createRenderCache, type RenderCache } from '../render/cache.js';
import { MemoryFileSystem } from '../render/fs.js';
import { loadRepository, loadRepositoryFromDir } from '../render/repository.js';
import type { RepositoryRender } from '../render/types.js';
import { ConditionTypes, Reasons, removeCondition, setCondition } from './conditions.js';
import { StalledError, TransientError, WaitingError, errorMessage, isReconcileError, type ReconcileError } from './errors.js';
import { CANCELLED, type GitSource, type Snapshot, type SourceRevision } from './git-source.js';
import { signaturePolicyEnabled, type SignaturePolicy } from './commit-signature.js';
import type { OperatorMetrics } from './metrics.js';
import type { RunOutcome, Trigger } from './schedule.js';
import type { StatusStore } from './status-store.js';

/** Renders a whole checkout; the default is `loadRepositoryFromDir` from src/render/repository.ts with the reconciler's render cache. */
export type LoadRepository = (dir: string) => Promise<RepositoryRender>;

/** The commit in force, handed to subscribers with its render. */
export interface AppliedRevision {
  commit: string;
  /** Tracked ref (`refs/heads/main`) or the pinned commit. */
  ref: string;
  message: string;
  author: { name: string; email: string };
  appliedAt: Date;
  /** Clean checkout of the commit; kept until a newer commit is applied. */
  snapshotDir: string;
  /** True when this commit does not descend from the previously seen one (force-push). */
  historyRewritten: boolean;
}

/**
 * Called with every newly applied (fully valid) commit, in subscription order. A subscriber that
 * throws makes the reconcile a TransientError (ApplyFailed): it is retried with backoff, and the
 * previous commit stays the last good one.
 */
export type ApplyListener = (render: RepositoryRender, revision: AppliedRevision) => void | Promise<void>;

export interface ReconcileResult extends RunOutcome {
  commit?: string;
  error?: ReconcileError;
  durationMs: number;
  /** Milliseconds per step that ran (detectChange, checkout, validateAndRender, handOver). */
  steps: Record<string, number>;
}

export interface ReconcilerOptions {
  source: GitSource;
  status: StatusStore;
  load?: LoadRepository;
  logger?: Logger;
  metrics?: OperatorMetrics;
  /**
   * When no rollout engine manages phases, an applied commit is what runs: currentVersion becomes
   * desiredVersion and the phase Healthy. With a rollout engine (false), the reconciler sets only
   * observedCommit, desiredVersion and conditions, and leaves phase/currentVersion to it.
   */
  appliedIsCurrent?: boolean;
  /** Most diagnostics copied into each cluster's status.errors. */
  maxStatusErrors?: number;
  /**
   * Only commits signed by these keys are applied; any other commit is refused as a whole, like an
   * invalid one (the last good commit stays in force).
   */
  signaturePolicy?: SignaturePolicy;
  now?: () => Date;
}

interface StepContext {
  trigger: Trigger;
  revision?: SourceRevision;
  snapshot?: Snapshot;
  render?: RepositoryRender;
  applied?: AppliedRevision;
  /** Set by a step that found nothing to do: stop here and write nothing (STYLE.md §12). */
  noop?: boolean;
}

type Step = (ctx: StepContext) => Promise<void>;


/**
 * One reconcile = ordered steps (detect change → checkout → validate and render → hand over),
 * each may throw a typed error; status is finalised in one place. An invalid commit is refused as
 * a whole: the last good commit stays in force and every cluster reports InvalidConfig.
 */
export class Reconciler {
  private readonly listeners: ApplyListener[] = [];
  private readonly load: LoadRepository;
  private readonly customLoad: boolean;
  /**
   * Shared by every render of this reconciler (across commits): unchanged files are not parsed,
   * validated or built again. Renders made with it hold deep-frozen objects. Other renders of the
   * same repository (e.g. per-version renders) may share it.
   */
  readonly renderCache: RenderCache = createRenderCache();
  private readonly now: () => Date;
  private lastGoodState?: { render: RepositoryRender; revision: AppliedRevision };
  /** Commit of the last attempt that reached a verdict (applied or refused); not retried. */
  private lastDecided?: string;
  private faultSince?: Date;
  private failures = 0;
  private pruning?: Promise<void>;
  private phaseBeforeInvalid = new Map<string, ClusterStatusStatus['phase']>();

  constructor(private readonly opts: ReconcilerOptions) {
    this.load = opts.load ?? ((dir) => loadRepositoryFromDir(dir, { cache: this.renderCache }));
    this.customLoad = opts.load !== undefined;
    this.now = opts.now ?? (() => new Date());
  }

  /** Subscribes to applied commits; returns an unsubscribe function. A late subscriber is called at once with the commit in force. */
  onApply(listener: ApplyListener): () => void {
    this.listeners.push(listener);
    if (this.lastGoodState) {
      const { render, revision } = this.lastGoodState;
      void Promise.resolve()
        .then(() => listener(render, revision))
        .catch((err: unknown) => this.opts.logger?.error({ err: errorMessage(err) }, 'late onApply subscriber failed'));
    }
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The commit in force and its render, if any commit was ever applied. */
  get lastGood(): { render: RepositoryRender; revision: AppliedRevision } | undefined {
    return this.lastGoodState;
  }

  /** One reconcile run. Never throws: the outcome says what the scheduler should do next. */
  async reconcile(trigger: Trigger): Promise<ReconcileResult> {
    const started = performance.now();
    const ctx: StepContext = { trigger };
    const steps: Array<[string, Step]> = [
      ['detectChange', this.detectChange],
      ['verifySignature', this.verifySignature],
      ['checkout', this.checkout],
      ['validateAndRender', this.validateAndRender],
      ['handOver', this.handOver],
    ];
    const timings: Record<string, number> = {};
    let error: ReconcileError | undefined;
    try {
      for (const [name, step] of steps) {
        const t = performance.now();
        try {
          await step.call(this, ctx);
        } finally {
          timings[name] = Math.round((performance.now() - t) * 10) / 10;
        }
        if (ctx.noop) break;
      }
    } catch (err) {
      error = isReconcileError(err) ? err : new TransientError(Reasons.GitOperationFailed, this.opts.source.redact(errorMessage(err)));
    } finally {
      // Status is finalised here and only here.
      this.finalise(ctx, error);
    }
    if (!ctx.noop && ctx.snapshot) void this.pruneLater();
    const result: RunOutcome['result'] = error
      ? error instanceof StalledError
        ? 'stalled'
        : error instanceof WaitingError
          ? 'waiting'
          : 'transient'
      : ctx.noop
        ? 'unchanged'
        : 'applied';
    const durationMs = performance.now() - started;
    this.opts.metrics?.reconciles.inc({ result });
    this.opts.metrics?.reconcileDuration.observe({ result }, durationMs / 1000);
    if (error) this.opts.metrics?.errors.inc({ reason: error.reason });
    return {
      result,
      commit: ctx.revision?.commit,
      error,
      durationMs,
      steps: timings,
      requeueAfterMs: error instanceof WaitingError ? error.requeueAfterMs : undefined,
    };
  }

  /**
   * Only the commit in force keeps its snapshot; refused and superseded ones go. Off the critical
   * path (after the hand-over); the next checkout waits for it.
   */
  private pruneLater(): Promise<void> {
    const keep = this.lastGoodState ? [this.lastGoodState.revision.commit] : [];
    this.pruning = this.opts.source.pruneSnapshots(keep).catch(() => undefined);
    return this.pruning;
  }

  // ---- steps ----------------------------------------------------------------------------------

  private async detectChange(ctx: StepContext): Promise<void> {
    const started = performance.now();
    try {
      // A webhook already told us the branch moved: fetch without the ls-refs probe.
      ctx.revision = await this.opts.source.latest({ probe: ctx.trigger !== 'webhook' });
      this.opts.metrics?.pollDuration.observe({ result: ctx.revision.fetched ? 'fetched' : 'unchanged' }, (performance.now() - started) / 1000);
    } catch (err) {
      this.opts.metrics?.pollDuration.observe({ result: 'error' }, (performance.now() - started) / 1000);
      throw err;
    }
    if (ctx.revision.commit === this.lastDecided) ctx.noop = true;
  }

  private async verifySignature(ctx: StepContext): Promise<void> {
    const policy = this.opts.signaturePolicy;
    if (!signaturePolicyEnabled(policy)) return;
    const commit = ctx.revision!.commit;
    const verdict = await this.opts.source.verifySignature(commit, policy);
    if (!verdict.ok) {
      throw new StalledError(
        Reasons.UnverifiedCommit,
        `commit ${commit.slice(0, 12)} refused: ${verdict.reason}` +
          (this.lastGoodState ? `; commit ${this.lastGoodState.revision.commit.slice(0, 12)} stays in force` : '; no earlier verified commit'),
        [verdict.reason],
      );
    }
    this.opts.logger?.info({ commit, signer: verdict.signer, format: verdict.format }, 'commit signature verified');
  }

  private async checkout(ctx: StepContext): Promise<void> {
    // The first checkout of this process starts clean (an earlier process may have left snapshots).
    await (this.pruning ?? this.pruneLater());
    ctx.snapshot = await this.opts.source.checkout(ctx.revision!.commit);
  }

  private async validateAndRender(ctx: StepContext): Promise<void> {
    const commit = ctx.revision!.commit;
    let render: RepositoryRender;
    try {
      const snapshot = ctx.snapshot!;
      // The checkout's files are already in memory: rendering them there skips reading them back.
      render =
        !this.customLoad && snapshot.files
          ? await loadRepository(new MemoryFileSystem(Object.fromEntries(snapshot.files)), { cache: this.renderCache })
          : await this.load(snapshot.dir);
    } catch (err) {
      throw new StalledError(Reasons.RenderFailed, `commit ${commit.slice(0, 12)} could not be rendered: ${errorMessage(err)}`, [errorMessage(err)]);
    }
    ctx.render = render;
    if (render.errors.length > 0) {
      const details = render.errors.map((d) => formatDiagnostic(d));
      throw new StalledError(
        Reasons.InvalidConfig,
        `commit ${commit.slice(0, 12)} refused: ${render.errors.length} error${render.errors.length === 1 ? '' : 's'}` +
          (this.lastGoodState ? `; commit ${this.lastGoodState.revision.commit.slice(0, 12)} stays in force` : '; no earlier valid commit'),
        details,
      );
    }
  }

  private async handOver(ctx: StepContext): Promise<void> {
    const rev = ctx.revision!;
    const info = await this.opts.source.commitInfo(rev.commit).catch(() => undefined);
    const applied: AppliedRevision = {
      commit: rev.commit,
      ref: rev.ref,
      message: info?.message ?? '',
      author: { name: info?.author.name ?? '', email: info?.author.email ?? '' },
      appliedAt: this.now(),
      snapshotDir: ctx.snapshot!.dir,
      historyRewritten: rev.historyRewritten === true,
    };
    for (const listener of [...this.listeners]) {
      try {
        await listener(ctx.render!, applied);
      } catch (err) {
        throw new TransientError(Reasons.ApplyFailed, `a subscriber refused commit ${rev.commit.slice(0, 12)}: ${errorMessage(err)}`);
      }
    }
    ctx.applied = applied;
  }

  // ---- status ---------------------------------------------------------------------------------

  private finalise(ctx: StepContext, error: ReconcileError | undefined): void {
    const now = this.now();
    const status = this.opts.status;
    const log = this.opts.logger;
    const commit = ctx.revision?.commit;

    if (error instanceof TransientError && error.reason === CANCELLED) {
      log?.info({ commit }, 'reconcile cancelled (operator stopping)');
      return;
    }
    if (error instanceof TransientError) {
      this.failures += 1;
      this.faultSince = this.faultSince ?? now;
      const since = this.faultSince.toISOString();
      status.updateSource((s) => ({ ...s, fault: { reason: error.reason, message: error.message, since, failures: this.failures } }));
      if (commit) status.recordHistory({ commit, outcome: 'failed', message: error.message }, now);
      status.updateMany(this.knownClusters(ctx), (s) => {
        const type = error.reason === Reasons.ApplyFailed ? ConditionTypes.ApplyFailed : ConditionTypes.FetchFailed;
        s.conditions = setCondition(s.conditions, { type, status: 'True', reason: error.reason, message: error.message }, now);
        s.conditions = setCondition(s.conditions, { type: ConditionTypes.Reconciling, status: 'True', reason: Reasons.ProgressingWithRetry, message: `retrying after ${this.failures} failure(s): ${error.reason}` }, now);
        s.conditions = setCondition(s.conditions, { type: ConditionTypes.Ready, status: 'False', reason: error.reason, message: this.inForceMessage(error.message) }, now);
        return s;
      });
      log?.warn({ reason: error.reason, err: error.message, failures: this.failures, commit }, 'reconcile failed; last good config stays in force');
      return;
    }

    const hadFault = this.faultSince !== undefined;
    this.failures = 0;
    this.faultSince = undefined;
    if (hadFault) {
      status.updateSource((s) => ({ ...s, fault: undefined }));
      log?.info({ commit }, 'git source recovered');
    }

    if (ctx.revision?.historyRewritten && commit) {
      const from = status.source.lastAttemptedCommit ?? status.source.lastAppliedCommit ?? '';
      status.updateSource((s) => ({ ...s, historyRewritten: { from, to: commit, at: now.toISOString() } }));
      log?.warn({ from, to: commit }, 'tracked ref history was rewritten (force-push)');
    }

    if (error instanceof StalledError && commit) {
      this.lastDecided = commit;
      status.updateSource((s) => ({ ...s, lastAttemptedCommit: commit, lastAttemptedAt: now.toISOString(), refused: { commit, errors: error.details } }));
      status.recordHistory({ commit, outcome: 'refused', message: error.message }, now);
      const errors = error.details.slice(0, this.opts.maxStatusErrors ?? 50);
      status.updateMany(this.knownClusters(ctx), (s, cluster) => {
        if (s.phase !== 'InvalidConfig') this.phaseBeforeInvalid.set(cluster, s.phase);
        s.phase = 'InvalidConfig';
        s.errors = errors;
        s.conditions = removeCondition(removeCondition(s.conditions, ConditionTypes.FetchFailed), ConditionTypes.ApplyFailed);
        s.conditions = removeCondition(s.conditions, ConditionTypes.Reconciling);
        s.conditions = setCondition(s.conditions, { type: ConditionTypes.Stalled, status: 'True', reason: error.reason, message: error.message }, now);
        s.conditions = setCondition(s.conditions, { type: ConditionTypes.Ready, status: 'False', reason: error.reason, message: error.message }, now);
        return s;
      });
      log?.error({ commit, reason: error.reason, errors: error.details.slice(0, 20) }, 'commit refused; last good config stays in force');
      return;
    }

    if (ctx.applied && ctx.render && commit) {
      this.lastDecided = commit;
      const applied = ctx.applied;
      const previous = this.lastGoodState?.revision.commit;
      this.lastGoodState = { render: ctx.render, revision: applied };
      this.opts.metrics?.markApplied(commit, applied.ref, applied.appliedAt);
      status.updateSource((s) => ({
        ...s,
        lastAppliedCommit: commit,
        lastAppliedAt: applied.appliedAt.toISOString(),
        lastAttemptedCommit: commit,
        lastAttemptedAt: now.toISOString(),
        refused: undefined,
      }));
      status.recordHistory({ commit, outcome: 'applied', message: applied.message.split('\n')[0] }, now);
      const versions = new Map(ctx.render.clusters.map((c) => [c.cluster, c.version]));
      const dropped = status.clusters().filter((c) => !versions.has(c));
      if (dropped.length) {
        status.remove(dropped);
        log?.info({ clusters: dropped }, 'clusters removed from the fleet');
      }
      const message = `Applied revision ${refShort(applied.ref)}@sha1:${commit}`;
      status.updateMany(versions.keys(), (s, cluster) => {
        const desired = versions.get(cluster)!;
        s.observedCommit = commit;
        s.desiredVersion = desired;
        delete s.errors;
        if (this.opts.appliedIsCurrent) {
          s.currentVersion = desired;
          s.phase = 'Healthy';
        } else if (s.phase === 'InvalidConfig' || s.phase === undefined) {
          s.phase = this.phaseBeforeInvalid.get(cluster) ?? 'Progressing';
        }
        this.phaseBeforeInvalid.delete(cluster);
        s.conditions = removeCondition(s.conditions, ConditionTypes.Stalled);
        s.conditions = removeCondition(removeCondition(s.conditions, ConditionTypes.FetchFailed), ConditionTypes.ApplyFailed);
        s.conditions = removeCondition(s.conditions, ConditionTypes.Reconciling);
        s.conditions = setCondition(s.conditions, { type: ConditionTypes.Ready, status: 'True', reason: Reasons.ReconciliationSucceeded, message }, now);
        return s;
      });
      log?.info({ commit, previous, clusters: [...versions.keys()], trigger: ctx.trigger, historyRewritten: applied.historyRewritten }, 'applied commit');
      return;
    }

    // Unchanged: only clear the fault conditions a recovery resolves; write nothing else.
    if (hadFault) {
      const refused = status.source.refused;
      status.updateMany(this.knownClusters(ctx), (s) => {
        s.conditions = removeCondition(removeCondition(s.conditions, ConditionTypes.FetchFailed), ConditionTypes.ApplyFailed);
        s.conditions = removeCondition(s.conditions, ConditionTypes.Reconciling);
        s.conditions = refused
          ? setCondition(s.conditions, { type: ConditionTypes.Ready, status: 'False', reason: Reasons.InvalidConfig, message: `commit ${refused.commit.slice(0, 12)} refused` }, now)
          : setCondition(
              s.conditions,
              { type: ConditionTypes.Ready, status: 'True', reason: Reasons.ReconciliationSucceeded, message: `Applied revision ${refShort(this.opts.source.fullRef)}@sha1:${this.lastGoodState?.revision.commit ?? 'none'}` },
              now,
            );
        return s;
      });
    }
  }

  private inForceMessage(message: string): string {
    const good = this.lastGoodState?.revision.commit;
    return good ? `${message}; commit ${good.slice(0, 12)} stays in force` : message;
  }

  /** Clusters to report on: those with a status, those of the last good render, those the new fleet names. */
  private knownClusters(ctx: StepContext): string[] {
    const names = new Set(this.opts.status.clusters());
    for (const c of this.lastGoodState?.render.clusters ?? []) names.add(c.cluster);
    for (const c of ctx.render?.clusters ?? []) names.add(c.cluster);
    const fleetClusters = (ctx.render?.fleet as { spec?: { clusters?: Array<{ name?: unknown }> } } | undefined)?.spec?.clusters;
    if (Array.isArray(fleetClusters)) for (const c of fleetClusters) if (typeof c?.name === 'string') names.add(c.name);
    return [...names].sort();
  }
}

function refShort(ref: string): string {
  return ref.replace(/^refs\/(heads|tags)\//, '');
}
