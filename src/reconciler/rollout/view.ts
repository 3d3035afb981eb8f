import type { ClusterPhase, FleetSpec } from '../../mesh/api/index.js';
import type { AnalysisOutcome } from './analysis.js';
import { canaryWeight, type ClusterRolloutState } from './engine.js';
import type { ResolvedRolloutPolicy } from './policy.js';

/** One cluster as `trellis rollout status` and `/v1/rollout` show it. */
export interface ClusterRolloutView {
  cluster: string;
  phase: ClusterPhase;
  stableVersion: string;
  desiredVersion?: string;
  targetVersion?: string;
  /** Percent of the cluster's proxies on the target version. */
  weight: number;
  step?: number;
  steps: number[];
  lastAnalysis?: AnalysisOutcome;
  proxies: { total: number; onTarget: number; drifted: number; disconnected: number };
  message: string;
}

export interface RolloutStatusView {
  commit?: string;
  generatedAt: string;
  suspended: boolean;
  stages: Array<{ name: string; clusters: ClusterRolloutView[] }>;
}

export function buildClusterView(
  state: ClusterRolloutState,
  policy: ResolvedRolloutPolicy,
  desiredVersion: string | undefined,
  proxies: ClusterRolloutView['proxies'],
): ClusterRolloutView {
  return {
    cluster: state.cluster,
    phase: state.phase,
    stableVersion: state.stableVersion,
    desiredVersion,
    targetVersion: state.targetVersion,
    weight: canaryWeight(state, policy),
    step: state.targetVersion ? state.stepIndex + 1 : undefined,
    steps: policy.canarySteps,
    lastAnalysis: state.lastAnalysis,
    proxies,
    message: state.message,
  };
}

export function groupByStage(fleet: FleetSpec, views: ClusterRolloutView[]): RolloutStatusView['stages'] {
  const byName = new Map(views.map((v) => [v.cluster, v]));
  return fleet.stages.map((s) => ({ name: s.name, clusters: s.clusters.flatMap((c) => (byName.has(c) ? [byName.get(c)!] : [])) }));
}

/** One plain line per cluster, for logs, pipes and CI. */
export function formatClusterLine(stage: string, v: ClusterRolloutView): string {
  const versions = v.targetVersion ? `${v.stableVersion} → ${v.targetVersion} ${v.weight}% (step ${v.step}/${v.steps.length})` : v.stableVersion;
  const a = v.lastAnalysis;
  const analysis = a ? ` success ${a.successRate ?? '-'}% p99 ${a.p99LatencyMs ?? '-'} ms n=${a.requests}` : '';
  const drift = v.proxies.drifted + v.proxies.disconnected > 0 ? ` drift ${v.proxies.drifted}/${v.proxies.disconnected} disc` : '';
  return `${stage.padEnd(8)} ${v.cluster.padEnd(8)} ${v.phase.padEnd(12)} ${versions}${analysis} proxies ${v.proxies.total}${drift} — ${v.message}`;
}
