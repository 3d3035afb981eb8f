import { createHash } from 'node:crypto';

/** Stable rank of a proxy: the same proxies lead every rollout of a cluster. */
export function proxyRank(proxyId: string): string {
  return createHash('sha256').update(proxyId).digest('hex');
}

/** How many of `total` proxies a canary step of `percent` moves: at least one when percent > 0. */
export function canaryCount(total: number, percent: number): number {
  if (percent <= 0 || total === 0) return 0;
  return Math.min(total, Math.max(1, Math.ceil((total * percent) / 100)));
}

/** The proxies (by id) that run the canary version at `percent`, chosen by stable hash order. */
export function selectCanaryProxies(proxyIds: readonly string[], percent: number): Set<string> {
  const ranked = [...proxyIds].sort((a, b) => (proxyRank(a) < proxyRank(b) ? -1 : proxyRank(a) > proxyRank(b) ? 1 : a.localeCompare(b)));
  return new Set(ranked.slice(0, canaryCount(ranked.length, percent)));
}
