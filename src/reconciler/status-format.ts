import type { ClusterStatusStatus } from '../mesh/api/trellis.js';
import { ConditionTypes, getCondition } from './conditions.js';

export const CLUSTER_STATUS_API_VERSION = 'trellis.dev/v1alpha1';
export const CLUSTER_STATUS_KIND = 'ClusterStatus';

/** The ClusterStatus document written to git (`status/<cluster>.yaml`) and to Kubernetes. */
export interface ClusterStatusResource {
  apiVersion: typeof CLUSTER_STATUS_API_VERSION;
  kind: typeof CLUSTER_STATUS_KIND;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec: { cluster: string };
  status: ClusterStatusStatus;
}

export function clusterStatusResource(cluster: string, status: ClusterStatusStatus, namespace?: string): ClusterStatusResource {
  return {
    apiVersion: CLUSTER_STATUS_API_VERSION,
    kind: CLUSTER_STATUS_KIND,
    metadata: { name: cluster, ...(namespace ? { namespace } : {}), labels: { 'trellis.dev/cluster': cluster } },
    spec: { cluster },
    status,
  };
}

/**
 * What makes a transition "meaningful" (one status commit each): phase, versions, canary step,
 * commit, errors, proxy counts, analysis verdict and condition status/reason. Analysis figures,
 * messages and timestamps alone do not.
 */
export function statusSummaryKey(s: ClusterStatusStatus): string {
  return JSON.stringify({
    phase: s.phase,
    desired: s.desiredVersion,
    current: s.currentVersion,
    commit: s.observedCommit,
    canary: s.canary ? [s.canary.step, s.canary.weight, s.canary.version] : undefined,
    passed: s.lastAnalysis?.passed,
    proxies: s.proxies ? [s.proxies.total, s.proxies.onDesired, s.proxies.drifted, s.proxies.disconnected] : undefined,
    errors: s.errors,
    conditions: (s.conditions ?? []).map((c) => [c.type, c.status, c.reason]),
  });
}

const PHASE_WORDS: Record<string, string> = {
  Progressing: 'progressing',
  Healthy: 'healthy',
  Degraded: 'degraded',
  RolledBack: 'rolled back',
  Waiting: 'waiting',
  Paused: 'paused',
  InvalidConfig: 'invalid config',
};

/** One human line: "prod-us: 1.16.1 canary 50% healthy — success 99.8%, p99 120 ms". */
export function statusLine(cluster: string, s: ClusterStatusStatus): string {
  const parts: string[] = [];
  const version = s.canary?.version ?? s.desiredVersion ?? s.currentVersion;
  if (version) parts.push(version);
  if (s.canary && s.canary.weight < 100 && s.phase !== 'RolledBack' && s.phase !== 'InvalidConfig') {
    parts.push(`canary ${s.canary.weight}%`);
    parts.push(s.lastAnalysis?.passed === false ? 'failing' : s.phase === 'Degraded' ? 'degraded' : 'healthy');
  } else if (s.phase) {
    parts.push(PHASE_WORDS[s.phase] ?? s.phase.toLowerCase());
  }
  if (s.phase === 'InvalidConfig' && s.errors?.length) parts.push(`(${s.errors.length} error${s.errors.length === 1 ? '' : 's'})`);
  if (s.phase === 'RolledBack' && s.currentVersion && s.currentVersion !== version) parts.push(`to ${s.currentVersion}`);
  const fetch = getCondition(s.conditions, ConditionTypes.FetchFailed);
  if (fetch?.status === 'True') parts.push(`(git source failing: ${fetch.reason})`);
  if (s.proxies && s.proxies.drifted > 0) parts.push(`(${s.proxies.drifted} drifted)`);
  let line = `${cluster}: ${parts.join(' ') || 'unknown'}`;
  const a = s.lastAnalysis;
  const figures: string[] = [];
  if (a?.successRate !== undefined) figures.push(`success ${formatNumber(a.successRate)}%`);
  if (a?.p99LatencyMs !== undefined) figures.push(`p99 ${formatNumber(a.p99LatencyMs)} ms`);
  // A healthy cluster's last analysis may be the failed canary it rolled back from: those numbers
  // belong to the rollback line, not to "healthy".
  const stale = s.phase === 'Healthy' && a?.passed === false;
  if (figures.length && !stale) line += ` — ${figures.join(', ')}`;
  return line;
}

/** Commit message for a batch: the first changed cluster's line as subject, every line in the body. */
export function statusCommitMessage(changed: Array<{ cluster: string; status: ClusterStatusStatus }>): string {
  const lines = changed.map((c) => statusLine(c.cluster, c.status));
  if (lines.length === 0) return 'status: no change';
  const subject = lines.length === 1 ? lines[0]! : `${lines[0]} (+${lines.length - 1} more)`;
  return lines.length === 1 ? `${subject}\n` : `${subject}\n\n${lines.join('\n')}\n`;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 10) / 10);
}
