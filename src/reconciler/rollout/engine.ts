import type { ClusterPhase } from '../../mesh/api/index.js';
import { analyseWindow, describeAnalysis, type AnalysisOutcome } from './analysis.js';
import type { GateDecision } from './gate.js';
import type { ResolvedRolloutPolicy } from './policy.js';
import { windowBetween, type StatsByVersion } from './stats.js';

/** Rollout state of one cluster. Plain JSON: it is persisted after every transition. */
export interface ClusterRolloutState {
  cluster: string;
  /** The version every proxy ran when the cluster was last healthy. */
  stableVersion: string;
  /** The version being rolled out; absent when none is. */
  targetVersion?: string;
  /** Index into the policy's canarySteps; meaningful only with a target. */
  stepIndex: number;
  /** Start of the current analysis window (ms since epoch) and the counters read then. */
  windowStartedAt?: number;
  windowStart?: StatsByVersion;
  failures: number;
  phase: ClusterPhase;
  message: string;
  lastAnalysis?: AnalysisOutcome;
  verifiedVersions: string[];
  failedVersions: string[];
  /** Monotonic count of transitions: lets a resumed operator prove it neither repeated nor skipped a step. */
  transitions: number;
  /**
   * Which proxies the current step moved to the target, and which it left, as decided when the step
   * began. A restarted operator (or proxies reconnecting one by one) keeps exactly this assignment,
   * instead of re-ranking a partial set of connected proxies and flipping some between versions.
   */
  assignment?: { canary: string[]; others: string[] };
}

export interface TickInput {
  now: number;
  policy: ResolvedRolloutPolicy;
  /** The version the cluster's overlay references at the commit in force. */
  desiredVersion: string;
  suspended: boolean;
  /** An abort marker for the desired version is committed. */
  aborted: boolean;
  gate: GateDecision;
  /** Cumulative counters per mesh version, summed over the cluster's proxies. */
  stats: StatsByVersion;
}

export type RolloutEvent =
  | { type: 'started'; version: string; from: string }
  | { type: 'stepAdvanced'; version: string; step: number; weight: number; analysis: AnalysisOutcome }
  | { type: 'analysisFailed'; version: string; step: number; failures: number; analysis: AnalysisOutcome }
  | { type: 'verified'; version: string; analysis?: AnalysisOutcome }
  | { type: 'rolledBack'; version: string; to: string; reason: string; analysis?: AnalysisOutcome }
  | { type: 'waiting'; version: string; reason: string }
  | { type: 'cancelled'; version: string };

export interface TickResult {
  state: ClusterRolloutState;
  events: RolloutEvent[];
}

export function initialRolloutState(cluster: string, version: string): ClusterRolloutState {
  return {
    cluster,
    stableVersion: version,
    stepIndex: -1,
    failures: 0,
    phase: 'Healthy',
    message: `all proxies on ${version}`,
    verifiedVersions: [version],
    failedVersions: [],
    transitions: 0,
  };
}

/** Canary weight (percent of proxies on the target version) in force for this state. */
export function canaryWeight(state: ClusterRolloutState, policy: ResolvedRolloutPolicy): number {
  return state.targetVersion !== undefined && state.stepIndex >= 0 ? policy.canarySteps[state.stepIndex] : 0;
}

/**
 * One step of the rollout state machine for a cluster. Pure: the caller supplies the clock, the
 * desired version from git, the stage gate and the proxies' counters, and persists the result.
 */
export function tickCluster(prev: ClusterRolloutState, input: TickInput): TickResult {
  const s: ClusterRolloutState = { ...prev, verifiedVersions: [...prev.verifiedVersions], failedVersions: [...prev.failedVersions] };
  const events: RolloutEvent[] = [];
  const moved = (phase: ClusterPhase, message: string): TickResult => {
    if (phase !== prev.phase || message !== prev.message || events.length > 0) s.transitions = prev.transitions + 1;
    s.phase = phase;
    s.message = message;
    return { state: s, events };
  };
  const { desiredVersion: desired, policy } = input;

  if (input.suspended) {
    return moved('Paused', s.targetVersion ? `paused at ${policy.canarySteps[s.stepIndex]}% of ${s.targetVersion}` : `paused on ${s.stableVersion}`);
  }

  // Git points back at the stable version (a revert, or a human undoing the bump): stop any rollout.
  if (desired === s.stableVersion) {
    if (s.targetVersion) {
      events.push({ type: 'cancelled', version: s.targetVersion });
      clearTarget(s);
    }
    const lastFailed = s.failedVersions[s.failedVersions.length - 1];
    const note = lastFailed ? ` (${lastFailed} was rolled back)` : '';
    return moved('Healthy', `all proxies on ${s.stableVersion}${note}`);
  }

  if (s.failedVersions.includes(desired) && s.targetVersion !== desired) {
    return moved('RolledBack', prev.phase === 'RolledBack' ? prev.message : `${desired} failed analysis earlier in this cluster; running ${s.stableVersion}`);
  }

  if (s.targetVersion !== desired) {
    if (s.targetVersion) {
      events.push({ type: 'cancelled', version: s.targetVersion });
      clearTarget(s);
    }
    if (!input.gate.open) {
      const reason = input.gate.reason ?? 'waiting for the previous stage';
      if (prev.phase !== 'Waiting' || prev.message !== reason) events.push({ type: 'waiting', version: desired, reason });
      return moved('Waiting', reason);
    }
    s.targetVersion = desired;
    s.stepIndex = 0;
    s.failures = 0;
    s.lastAnalysis = undefined;
    openWindow(s, input);
    events.push({ type: 'started', version: desired, from: s.stableVersion });
    return moved('Progressing', `canary ${policy.canarySteps[0]}% on ${desired}`);
  }

  const target = s.targetVersion;
  if (input.aborted) return rollBack(s, input, events, moved, 'aborted by a commit');

  if (s.windowStartedAt === undefined) return moved(prev.phase === 'Degraded' ? 'Degraded' : 'Progressing', prev.message);
  const canary = windowBetween(s.windowStart?.[target], input.stats[target]);
  const baseline = windowBetween(s.windowStart?.[s.stableVersion], input.stats[s.stableVersion]);
  const analysis = analyseWindow(canary, baseline, policy.thresholds);
  if (input.now - s.windowStartedAt < policy.intervalMs && !failsFast(analysis, policy)) {
    return moved(prev.phase === 'Degraded' ? 'Degraded' : 'Progressing', prev.message);
  }
  s.lastAnalysis = analysis;
  const weight = policy.canarySteps[s.stepIndex];

  if (analysis.verdict === 'inconclusive') {
    // Keep accumulating the same window: a quiet canary is neither promoted nor failed.
    return moved(prev.phase === 'Degraded' ? 'Degraded' : 'Progressing', `canary ${weight}% on ${target}: waiting for traffic (${analysis.reasons.join('; ')})`);
  }

  if (analysis.verdict === 'fail') {
    s.failures += 1;
    events.push({ type: 'analysisFailed', version: target, step: s.stepIndex, failures: s.failures, analysis });
    if (s.failures >= policy.failureLimit) return rollBack(s, input, events, moved, analysis.reasons.join('; '), analysis);
    openWindow(s, input);
    return moved('Degraded', `canary ${weight}% on ${target} failed analysis ${s.failures}/${policy.failureLimit}: ${analysis.reasons.join('; ')}`);
  }

  if (s.stepIndex + 1 >= policy.canarySteps.length) {
    s.stableVersion = target;
    if (!s.verifiedVersions.includes(target)) s.verifiedVersions.push(target);
    clearTarget(s);
    events.push({ type: 'verified', version: target, analysis });
    return moved('Healthy', `all proxies on ${target}, verified — ${describeAnalysis(analysis)}`);
  }
  s.stepIndex += 1;
  s.failures = 0;
  openWindow(s, input);
  const next = policy.canarySteps[s.stepIndex];
  events.push({ type: 'stepAdvanced', version: target, step: s.stepIndex, weight: next, analysis });
  return moved('Progressing', `canary ${next}% on ${target} — previous step ${describeAnalysis(analysis)}`);
}

/**
 * Promote slowly, fail fast: passing a step always waits the whole interval, but a window whose
 * canary is already clearly failing — success rate more than FAIL_FAST_MARGIN_POINTS below the
 * minimum over at least minRequests — is judged at once, so a bad version meets fewer users.
 */
export const FAIL_FAST_MARGIN_POINTS = 10;

function failsFast(a: AnalysisOutcome, policy: ResolvedRolloutPolicy): boolean {
  return a.verdict === 'fail' && a.successRate !== undefined && a.requests >= policy.thresholds.minRequests && a.successRate < policy.thresholds.minSuccessRate - FAIL_FAST_MARGIN_POINTS;
}

function openWindow(s: ClusterRolloutState, input: TickInput): void {
  s.windowStartedAt = input.now;
  s.windowStart = structuredClone(input.stats);
}

function clearTarget(s: ClusterRolloutState): void {
  s.targetVersion = undefined;
  s.stepIndex = -1;
  s.windowStartedAt = undefined;
  s.windowStart = undefined;
  s.failures = 0;
}

function rollBack(
  s: ClusterRolloutState,
  input: TickInput,
  events: RolloutEvent[],
  moved: (phase: ClusterPhase, message: string) => TickResult,
  reason: string,
  analysis?: AnalysisOutcome,
): TickResult {
  const version = s.targetVersion ?? input.desiredVersion;
  if (!s.failedVersions.includes(version)) s.failedVersions.push(version);
  clearTarget(s);
  events.push({ type: 'rolledBack', version, to: s.stableVersion, reason, analysis });
  const numbers = analysis ? ` (${describeAnalysis(analysis)})` : '';
  return moved('RolledBack', `${version} rolled back to ${s.stableVersion}: ${reason}${numbers}`);
}
