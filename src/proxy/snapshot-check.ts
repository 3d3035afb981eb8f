import { SNAPSHOT_FORMAT, type ClusterLoadAssignment, type GatewayListener, type ProxySnapshot, type UpstreamCluster, type VirtualHost } from '../mesh/snapshot.js';

/** Clusters a route may name without the snapshot defining them (served by the proxy itself). */
export const BUILTIN_CLUSTERS = new Set(['PassthroughCluster', 'BlackHoleCluster']);

export type SnapshotCheck = { ok: true; snapshot: ProxySnapshot } | { ok: false; errors: string[] };

/** Names a check may look up; null skips the cross-reference (the caller checks it on its own). */
type Known = ReadonlySet<string> | null;

/**
 * Structural checks the proxy needs before it compiles a snapshot: the parts it indexes into must
 * have the right shape, and every route destination / mirror must name a cluster of the snapshot.
 */
export function checkSnapshotShape(value: unknown): SnapshotCheck {
  const errors: string[] = [];
  if (!checkSnapshotFrame(value, errors)) return { ok: false, errors };
  const s = value as ProxySnapshot;
  const clusters = new Set([...BUILTIN_CLUSTERS, ...s.clusters.map((c) => c.name)]);
  s.clusters.forEach((c, i) => checkClusterShape(c, i, errors));
  s.endpoints.forEach((e, i) => checkEndpointsShape(e, i, clusters, errors));
  s.routeConfigs.forEach((rc, i) => {
    if (!Array.isArray(rc.virtualHosts)) {
      errors.push(`routeConfigs[${i}] (${rc.name}).virtualHosts: required array`);
      return;
    }
    rc.virtualHosts.forEach((vh, j) => checkVirtualHostShape(vh, `routeConfigs[${i}]`, rc.name, j, clusters, errors));
  });
  const routeConfigs = new Set(s.routeConfigs.map((r) => r.name));
  s.listeners.forEach((l, i) => checkListenerShape(l, i, routeConfigs, errors));
  return errors.length ? { ok: false, errors } : { ok: true, snapshot: s };
}

/** The top-level fields; false when the lists cannot be walked. */
export function checkSnapshotFrame(value: unknown, errors: string[]): boolean {
  if (typeof value !== 'object' || value === null) {
    errors.push('snapshot: not an object');
    return false;
  }
  const s = value as Partial<ProxySnapshot>;
  const before = errors.length;
  if (s.format !== SNAPSHOT_FORMAT) errors.push(`format: expected ${SNAPSHOT_FORMAT}, got ${JSON.stringify(s.format)}`);
  if (typeof s.version !== 'string' || s.version === '') errors.push('version: required string');
  if (typeof s.meshVersion !== 'string') errors.push('meshVersion: required string');
  if (!s.proxy || typeof s.proxy !== 'object') errors.push('proxy: required object');
  if (!s.mesh || typeof s.mesh !== 'object') errors.push('mesh: required object');
  if (!s.telemetry || typeof s.telemetry !== 'object') errors.push('telemetry: required object');
  for (const key of ['routeConfigs', 'clusters', 'endpoints', 'listeners'] as const) {
    if (!Array.isArray(s[key])) errors.push(`${key}: required array`);
  }
  return errors.length === before;
}

export function checkClusterShape(c: UpstreamCluster, i: number, errors: string[]): void {
  if (typeof c.name !== 'string') errors.push(`clusters[${i}].name: required string`);
  if (!c.connectionPool || typeof c.connectionPool !== 'object') errors.push(`clusters[${i}] (${c.name}).connectionPool: required object`);
  if (!c.lb || typeof c.lb !== 'object') errors.push(`clusters[${i}] (${c.name}).lb: required object`);
}

export function checkEndpointsShape(e: ClusterLoadAssignment, i: number, clusters: Known, errors: string[]): void {
  if (clusters && !clusters.has(e.cluster)) errors.push(`endpoints[${i}].cluster: unknown cluster ${e.cluster}`);
  if (!Array.isArray(e.endpoints)) errors.push(`endpoints[${i}].endpoints: required array`);
  else e.endpoints.forEach((ep, j) => {
    if (typeof ep.address !== 'string' || !Number.isInteger(ep.port) || ep.port <= 0 || ep.port > 65535) {
      errors.push(`endpoints[${i}] (${e.cluster}).endpoints[${j}]: address and port 1-65535 required`);
    }
  });
}

/** One virtual host of route config `rcName` (at `rcAt`); with `clusters`, also every cluster its routes name. */
export function checkVirtualHostShape(vh: VirtualHost, rcAt: string, rcName: string, j: number, clusters: Known, errors: string[]): void {
  if (!Array.isArray(vh.domains) || !Array.isArray(vh.routes)) {
    errors.push(`${rcAt}.virtualHosts[${j}] (${vh.name}): domains and routes required`);
    return;
  }
  vh.routes.forEach((r, k) => {
    const at = `${rcAt} (${rcName}).virtualHosts[${j}] (${vh.name}).routes[${k}] (${r.name})`;
    if (!Array.isArray(r.match)) errors.push(`${at}.match: required array`);
    if (!r.retry || typeof r.retry !== 'object') errors.push(`${at}.retry: required object`);
    if (!r.action || typeof r.action !== 'object') {
      errors.push(`${at}.action: required object`);
      return;
    }
    if (r.action.kind === 'route') {
      if (!Array.isArray(r.action.destinations) || r.action.destinations.length === 0) errors.push(`${at}.action.destinations: at least one required`);
      else r.action.destinations.forEach((d, n) => {
        if (clusters && !clusters.has(d.cluster)) errors.push(`${at}.action.destinations[${n}].cluster: unknown cluster ${d.cluster}`);
        if (typeof d.weight !== 'number' || d.weight < 0) errors.push(`${at}.action.destinations[${n}].weight: non-negative number required`);
      });
    } else if (r.action.kind === 'redirect') {
      if (!r.action.redirect || typeof r.action.redirect.code !== 'number') errors.push(`${at}.action.redirect.code: required number`);
    } else if (r.action.kind === 'directResponse') {
      if (typeof r.action.status !== 'number' || r.action.status < 200 || r.action.status > 599) errors.push(`${at}.action.status: 200-599 required`);
    } else errors.push(`${at}.action.kind: unknown ${JSON.stringify((r.action as { kind?: unknown }).kind)}`);
    (r.mirrors ?? []).forEach((m, n) => {
      if (clusters && !clusters.has(m.cluster)) errors.push(`${at}.mirrors[${n}].cluster: unknown cluster ${m.cluster}`);
    });
  });
}

export function checkListenerShape(l: GatewayListener, i: number, routeConfigs: Known, errors: string[]): void {
  if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) errors.push(`listeners[${i}] (${l.name}).port: 0-65535 required`);
  if (routeConfigs && !routeConfigs.has(l.routeConfig)) errors.push(`listeners[${i}] (${l.name}).routeConfig: unknown route config ${l.routeConfig}`);
}
