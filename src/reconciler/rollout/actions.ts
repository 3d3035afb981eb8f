import type { Logger } from 'pino';
import { describeAnalysis } from './analysis.js';
import type { BranchPublisher } from './branch-publisher.js';
import type { DesiredFleet, ClusterTransition } from './controller.js';
import type { ClusterRolloutState } from './engine.js';
import { nextStageReadyFor } from './gate.js';
import { planOverlayBumps } from './plan.js';
import type { ResolvedRolloutPolicy } from './policy.js';

export function promotionBranch(stage: string, version: string): string {
  return `trellis/promote/${stage}-${version}`;
}

function evidenceLines(clusters: readonly string[], states: Readonly<Record<string, ClusterRolloutState>>): string[] {
  return clusters.map((c) => {
    const s = states[c];
    const a = s?.lastAnalysis;
    return `- ${c}: ${s ? s.phase : 'unknown'}${a ? ` — ${describeAnalysis(a)}` : ''}`;
  });
}

/**
 * What the operator writes to git after a rollout transition, per the Fleet's policy:
 * - a version verified by a whole stage is promoted to the next stage — a branch
 *   `trellis/promote/<stage>-<version>` for a pull request, or a commit on the tracked branch (auto);
 * - a rolled-back version is reverted in git (revert-commit) so the overlay names what runs.
 * Each commit message carries the analysis numbers that decided it.
 */
export async function applyRolloutActions(opts: {
  transition: ClusterTransition;
  desired: DesiredFleet;
  policy: ResolvedRolloutPolicy;
  states: Readonly<Record<string, ClusterRolloutState>>;
  verified: (cluster: string) => readonly string[];
  publisher: BranchPublisher;
  trackedBranch: string;
  logger: Logger;
}): Promise<void> {
  const { transition: t, desired, policy, publisher, trackedBranch, logger } = opts;
  for (const event of t.events) {
    if (event.type === 'verified' && policy.promotion !== 'manual') {
      const next = nextStageReadyFor(desired.fleet, t.cluster, event.version, opts.verified);
      if (!next) continue;
      const stage = desired.fleet.stages.find((s) => s.clusters.includes(t.cluster))!;
      const target = policy.promotion === 'auto' ? trackedBranch : promotionBranch(next.name, event.version);
      const message = [
        `Promote ${event.version} to stage ${next.name} (${next.clusters.join(', ')})`,
        '',
        `Stage ${stage.name} verified ${event.version} through every canary step (${policy.canarySteps.join('% → ')}%):`,
        ...evidenceLines(stage.clusters, opts.states),
        '',
        `Authored by the Trellis operator (promotion: ${policy.promotion}).`,
      ].join('\n');
      const commit = await publisher.publish({
        baseBranch: trackedBranch,
        targetBranch: target,
        plan: (tip) => planOverlayBumps(tip, desired.fleet, next.clusters, event.version),
        message,
      });
      logger.info({ stage: next.name, version: event.version, branch: target, commit }, commit ? 'promotion pushed' : 'promotion already in git');
    }
    if (event.type === 'rolledBack' && policy.rollback === 'revert-commit') {
      const message = [
        `Revert ${t.cluster} to ${event.to}: ${event.version} failed canary analysis`,
        '',
        `Reason: ${event.reason}`,
        ...(event.analysis ? [`Last analysis: ${describeAnalysis(event.analysis)}`] : []),
        `Every proxy of ${t.cluster} runs ${event.to} again; this commit makes git say so.`,
      ].join('\n');
      const commit = await publisher.publish({
        baseBranch: trackedBranch,
        targetBranch: trackedBranch,
        plan: (tip) => planOverlayBumps(tip, desired.fleet, [t.cluster], event.to),
        message,
      });
      logger.warn({ cluster: t.cluster, version: event.version, to: event.to, commit }, commit ? 'revert commit pushed' : 'git already names the stable version');
    }
  }
}
