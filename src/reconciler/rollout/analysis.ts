import { latencyQuantile, successRate, type VersionCounters } from './stats.js';

export interface AnalysisThresholds {
  minSuccessRate: number;
  maxP99LatencyMs: number;
  minRequests: number;
  /** Largest allowed drop in success rate (percentage points) against the baseline version. */
  maxRegression: number;
}

export type AnalysisVerdict = 'pass' | 'fail' | 'inconclusive';

export interface AnalysisOutcome {
  verdict: AnalysisVerdict;
  requests: number;
  successRate?: number;
  p99LatencyMs?: number;
  baselineRequests: number;
  baselineSuccessRate?: number;
  /** Human-readable reasons, one per failed check (or why the window was inconclusive). */
  reasons: string[];
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Judges one analysis window of the canary version against fixed thresholds and against the
 * baseline (proxies still on the old version). Too few canary requests is inconclusive, never a
 * pass: a silent canary proves nothing. The baseline comparison applies only when the baseline
 * itself saw enough requests to mean something.
 */
export function analyseWindow(canary: VersionCounters, baseline: VersionCounters, t: AnalysisThresholds): AnalysisOutcome {
  const rate = successRate(canary);
  const p99 = latencyQuantile(canary, 0.99);
  const baseRate = successRate(baseline);
  const outcome: AnalysisOutcome = {
    verdict: 'pass',
    requests: canary.requests,
    successRate: rate === undefined ? undefined : round(rate, 2),
    p99LatencyMs: p99 === undefined ? undefined : round(p99),
    baselineRequests: baseline.requests,
    baselineSuccessRate: baseRate === undefined ? undefined : round(baseRate, 2),
    reasons: [],
  };
  if (canary.requests < t.minRequests || rate === undefined) {
    outcome.verdict = 'inconclusive';
    outcome.reasons.push(`only ${canary.requests} requests (minimum ${t.minRequests})`);
    return outcome;
  }
  if (rate < t.minSuccessRate) outcome.reasons.push(`success rate ${round(rate, 2)}% < ${t.minSuccessRate}%`);
  if (p99 !== undefined && p99 > t.maxP99LatencyMs) outcome.reasons.push(`p99 ${round(p99)} ms > ${t.maxP99LatencyMs} ms`);
  if (baseRate !== undefined && baseline.requests >= t.minRequests && baseRate - rate > t.maxRegression) {
    outcome.reasons.push(`success rate ${round(baseRate - rate, 2)} points below baseline ${round(baseRate, 2)}% (max regression ${t.maxRegression})`);
  }
  outcome.verdict = outcome.reasons.length > 0 ? 'fail' : 'pass';
  return outcome;
}

export function describeAnalysis(a: AnalysisOutcome): string {
  const parts: string[] = [];
  if (a.successRate !== undefined) parts.push(`success ${a.successRate}%`);
  if (a.p99LatencyMs !== undefined) parts.push(`p99 ${a.p99LatencyMs} ms`);
  parts.push(`${a.requests} requests`);
  if (a.baselineSuccessRate !== undefined) parts.push(`baseline ${a.baselineSuccessRate}%`);
  return parts.join(', ');
}
