import type { FleetSpec } from '../../mesh/api/index.js';
import type { AnalysisThresholds } from './analysis.js';

/** The Fleet's rollout policy with every default filled in (values from DESIGN.md §4 and Flagger's conventions). */
export interface ResolvedRolloutPolicy {
  canarySteps: number[];
  intervalMs: number;
  thresholds: AnalysisThresholds;
  failureLimit: number;
  promotion: 'manual' | 'pull-request' | 'auto';
  rollback: 'hold' | 'revert-commit';
}

export const DEFAULT_CANARY_STEPS = [10, 50, 100];
export const DEFAULT_INTERVAL_MS = 60_000;

/** Parses the Fleet's interval strings ("30s", "2m", "1500ms"); the mesh validator has already checked their syntax. */
export function parseInterval(text: string | undefined, fallbackMs: number): number {
  if (!text) return fallbackMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`invalid interval "${text}" (use e.g. 500ms, 30s, 2m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

export function resolveRolloutPolicy(fleet: FleetSpec): ResolvedRolloutPolicy {
  const r = fleet.rollout ?? {};
  const a = r.analysis ?? {};
  const steps = r.canarySteps && r.canarySteps.length > 0 ? [...r.canarySteps] : DEFAULT_CANARY_STEPS;
  if (steps[steps.length - 1] !== 100) steps.push(100);
  return {
    canarySteps: steps,
    intervalMs: parseInterval(a.interval, DEFAULT_INTERVAL_MS),
    thresholds: {
      minSuccessRate: a.minSuccessRate ?? 99,
      maxP99LatencyMs: a.maxP99LatencyMs ?? 500,
      minRequests: a.minRequests ?? 20,
      maxRegression: a.maxRegression ?? 1,
    },
    failureLimit: Math.max(1, a.failureLimit ?? 2),
    promotion: r.promotion ?? 'manual',
    rollback: r.rollback ?? 'hold',
  };
}
