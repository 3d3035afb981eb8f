import type { FleetSpec } from '../../mesh/api/index.js';
import { selectCanaryProxies } from './assignment.js';
import { canaryWeight, initialRolloutState, tickCluster, type ClusterRolloutState, type RolloutEvent } from './engine.js';
import { ABORT_ANNOTATION } from './fleet-edit.js';
import { stageGate } from './gate.js';
import { resolveRolloutPolicy, type ResolvedRolloutPolicy } from './policy.js';
import type { RolloutStateFile, RolloutStateStore } from './state-store.js';
import type { StatsByVersion } from './stats.js';

/** What the controller reads of the live fleet: connected proxies and their counters per mesh version. */
export interface FleetObservation {
  proxiesOf(cluster: string): string[];
  statsOf(cluster: string): StatsByVersion;
}

/** Versions other clusters verified, as recorded on the status branch (possibly by other operators). */
export type VerifiedVersionsOf = (cluster: string) => readonly string[];

/** The desired state from the commit in force. */
export interface DesiredFleet {
  fleet: FleetSpec;
  annotations: Record<string, string>;
  /** Version each cluster's overlay references. */
  versions: Record<string, string>;
  commit: string;
}

export interface ClusterTransition {
  cluster: string;
  state: ClusterRolloutState;
  events: RolloutEvent[];
  /** The set of proxies per version changed: their snapshots must be re-rendered. */
  assignmentChanged: boolean;
}

/**
 * Runs the rollout state machine of the clusters this operator manages, persists every
 * transition before reporting it (so a kill -9 resumes at the same step), and answers which mesh
 * version each proxy should run.
 */
const RESUME_PENDING = -1;

export class RolloutController {
  private file: RolloutStateFile = { version: 1, clusters: {} };
  private desired?: DesiredFleet;
  private policy?: ResolvedRolloutPolicy;
  /** After a restart, analysis windows re-open until proxies have reconnected and reported (see load). */
  private resumeSettledAt = 0;

  constructor(
    private readonly opts: {
      store: RolloutStateStore;
      /** The clusters this operator manages (read at every call: the Fleet may change). */
      clusters: () => readonly string[];
      observe: FleetObservation;
      verifiedElsewhere: VerifiedVersionsOf;
      /** How long after a restart counters are treated as unsettled (default 3 s: a few heartbeats). */
      resumeSettleMs?: number;
    },
  ) {}

  /**
   * Loads the persisted state: a rollout resumes at the step it was on. The analysis window of
   * that step is measured afresh, because the counters it started from lived in the previous
   * process (a restarted operator sees each proxy's whole history in its first heartbeat).
   */
  async load(): Promise<void> {
    this.file = await this.opts.store.load();
    // Counted from the first tick, not from here: the first commit may take a while to apply, and a
    // window must never span two operator processes' counters.
    this.resumeSettledAt = RESUME_PENDING;
  }

  get states(): Readonly<Record<string, ClusterRolloutState>> {
    return this.file.clusters;
  }

  get resolvedPolicy(): ResolvedRolloutPolicy | undefined {
    return this.policy;
  }

  /** A new valid commit: record what git asks for. A cluster seen for the first time starts healthy on it. */
  async setDesired(desired: DesiredFleet): Promise<void> {
    this.desired = desired;
    this.policy = resolveRolloutPolicy(desired.fleet);
    const next: RolloutStateFile = { version: 1, clusters: { ...this.file.clusters } };
    let created = false;
    for (const cluster of this.opts.clusters()) {
      const version = desired.versions[cluster];
      if (version && !next.clusters[cluster]) {
        next.clusters[cluster] = initialRolloutState(cluster, version);
        created = true;
      }
    }
    if (created) await this.opts.store.save(next);
    this.file = next;
  }

  /** Verified versions of a cluster: this operator's own record, else the status branch's. */
  verified(cluster: string): readonly string[] {
    const own = this.file.clusters[cluster]?.verifiedVersions ?? [];
    return [...new Set([...own, ...this.opts.verifiedElsewhere(cluster)])];
  }

  /** The mesh version a proxy of `cluster` runs now: the target for the proxies the canary step selects, else the stable version. */
  versionFor(cluster: string, proxyId: string): string | undefined {
    const state = this.file.clusters[cluster];
    if (!state) return this.desired?.versions[cluster];
    if (!state.targetVersion || !this.policy) return state.stableVersion;
    const weight = canaryWeight(state, this.policy);
    if (weight >= 100) return state.targetVersion;
    // The step's recorded assignment first: it survives restarts and reconnects unchanged.
    if (state.assignment?.canary.includes(proxyId)) return state.targetVersion;
    if (state.assignment?.others.includes(proxyId)) return state.stableVersion;
    return selectCanaryProxies(this.opts.observe.proxiesOf(cluster), weight).has(proxyId) ? state.targetVersion : state.stableVersion;
  }

  /** The assignment a step starts with, from the proxies connected now. */
  private assignmentFor(cluster: string, state: ClusterRolloutState, policy: ResolvedRolloutPolicy): ClusterRolloutState['assignment'] {
    if (!state.targetVersion) return undefined;
    const connected = this.opts.observe.proxiesOf(cluster);
    const canary = selectCanaryProxies(connected, canaryWeight(state, policy));
    return { canary: [...canary].sort(), others: connected.filter((id) => !canary.has(id)).sort() };
  }

  /**
   * One step for every managed cluster. The new state is written to disk before it becomes
   * visible (API, version assignment): what anyone saw survives a kill -9.
   */
  async tick(now: number): Promise<ClusterTransition[]> {
    const desired = this.desired;
    const policy = this.policy;
    if (!desired || !policy) return [];
    if (this.resumeSettledAt === RESUME_PENDING) this.resumeSettledAt = now + (this.opts.resumeSettleMs ?? 3000);
    const next: RolloutStateFile = { version: 1, clusters: { ...this.file.clusters } };
    const out: ClusterTransition[] = [];
    for (const cluster of this.opts.clusters()) {
      let prev = next.clusters[cluster];
      const version = desired.versions[cluster];
      if (!prev || !version) continue;
      if (prev.targetVersion && now < this.resumeSettledAt) {
        prev = { ...prev, windowStartedAt: now, windowStart: structuredClone(this.opts.observe.statsOf(cluster)) };
      }
      const { state, events } = tickCluster(prev, {
        now,
        policy,
        desiredVersion: version,
        suspended: desired.fleet.suspend === true,
        aborted: desired.annotations[ABORT_ANNOTATION] === version,
        gate: stageGate(desired.fleet, cluster, version, (c) => this.verified(c)),
        stats: this.opts.observe.statsOf(cluster),
      });
      if (state.transitions === prev.transitions) {
        next.clusters[cluster] = state; // an unchanged step keeps its accumulating window in memory only
        continue;
      }
      const assignmentChanged =
        state.targetVersion !== prev.targetVersion || state.stableVersion !== prev.stableVersion || state.stepIndex !== prev.stepIndex;
      if (assignmentChanged) state.assignment = this.assignmentFor(cluster, state, policy);
      next.clusters[cluster] = state;
      out.push({ cluster, state, events, assignmentChanged });
    }
    if (out.length > 0) await this.opts.store.save(next);
    this.file = next;
    return out;
  }

}
