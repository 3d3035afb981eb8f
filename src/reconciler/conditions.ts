import type { Condition } from '../mesh/api/trellis.js';

/** Condition types (kstatus: Ready, plus abnormal-true Reconciling and Stalled; FetchFailed is negative-polarity). */
export const ConditionTypes = {
  Ready: 'Ready',
  Reconciling: 'Reconciling',
  Stalled: 'Stalled',
  FetchFailed: 'FetchFailed',
  /** A subscriber (rollout engine, discovery) refused a valid commit. */
  ApplyFailed: 'ApplyFailed',
} as const;

/** Every PascalCase reason the reconciler writes, in one place (STYLE.md §13). */
export const Reasons = {
  ReconciliationSucceeded: 'ReconciliationSucceeded',
  Progressing: 'Progressing',
  ProgressingWithRetry: 'ProgressingWithRetry',
  InvalidConfig: 'InvalidConfig',
  UnverifiedCommit: 'UnverifiedCommit',
  RenderFailed: 'RenderFailed',
  ApplyFailed: 'ApplyFailed',
  GitOperationFailed: 'GitOperationFailed',
  GitOperationTimeout: 'GitOperationTimeout',
  AuthenticationFailed: 'AuthenticationFailed',
  RefNotFound: 'RefNotFound',
  CommitNotFound: 'CommitNotFound',
} as const;

/** Longest condition message kept; longer ones are cut with an ellipsis. */
export const MAX_CONDITION_MESSAGE_CHARS = 1024;

const ORDER = [ConditionTypes.Ready, ConditionTypes.Reconciling, ConditionTypes.Stalled];

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * Sets one condition. `lastTransitionTime` moves only when `status` really changes; reason and
 * message updates keep it. Messages are trimmed; the list is sorted (Ready, Reconciling, Stalled, rest A–Z).
 */
export function setCondition(conditions: readonly Condition[] | undefined, next: ConditionInput, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const message = trimMessage(next.message);
  const idx = list.findIndex((c) => c.type === next.type);
  const prev = idx >= 0 ? list[idx] : undefined;
  const lastTransitionTime = prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString();
  const cond: Condition = { ...next, message, lastTransitionTime };
  if (idx >= 0) list[idx] = cond;
  else list.push(cond);
  return sortConditions(list);
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

function sortConditions(list: Condition[]): Condition[] {
  const rank = (t: string): number => {
    const i = ORDER.indexOf(t as (typeof ORDER)[number]);
    return i >= 0 ? i : ORDER.length;
  };
  return list.sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type));
}

function trimMessage(m: string): string {
  const one = m.trim();
  return one.length > MAX_CONDITION_MESSAGE_CHARS ? `${one.slice(0, MAX_CONDITION_MESSAGE_CHARS - 1)}…` : one;
}
