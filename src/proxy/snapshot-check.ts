import { SNAPSHOT_FORMAT, type ProxySnapshot } from '../mesh/snapshot.js';

/** Clusters a route may name without the snapshot defining them (served by the proxy itself). */
export const BUILTIN_CLUSTERS = new Set(['PassthroughCluster', 'BlackHoleCluster']);

export type SnapshotCheck = { ok: true; snapshot: ProxySnapshot } | { ok: false; errors: string[] };

/**
 * Structural checks the proxy needs before it compiles a snapshot: the parts it indexes into must
 * have the right shape, and every route destination / mirror must name a cluster of the snapshot.
 */
export function checkSnapshotShape(value: unknown): SnapshotCheck {
  const errors: string[] = [];
  if (typeof value !== 'object' || value === null) return { ok: false, errors: ['snapshot: not an object'] };
  const s = value as Partial<ProxySnapshot>;
  if (s.format !== SNAPSHOT_FORMAT) errors.push(`format: expected ${SNAPSHOT_FORMAT}, got ${JSON.stringify(s.format)}`);
  if (typeof s.version !== 'string' || s.version === '') errors.push('version: required string');
  if (typeof s.meshVersion !== 'string') errors.push('meshVersion: required string');
  if (!s.proxy || typeof s.proxy !== 'object') errors.push('proxy: required object');
  if (!s.mesh || typeof s.mesh !== 'object') errors.push('mesh: required object');
  if (!s.telemetry || typeof s.telemetry !== 'object') errors.push('telemetry: required object');
  for (const key of ['routeConfigs', 'clusters', 'endpoints', 'listeners'] as const) {
    if (!Array.isArray(s[key])) errors.push(`${key}: required array`);
  }
  if (errors.length) return { ok: false, errors };
  const clusters = new Set([...BUILTIN_CLUSTERS, ...s.clusters!.map((c) => c.name)]);
  s.clusters!.forEach((c, i) => {
    if (typeof c.name !== 'string') errors.push(`clusters[${i}].name: required string`);
    if (!c.connectionPool || typeof c.connectionPool !== 'object') errors.push(`clusters[${i}] (${c.name}).connectionPool: required object`);
    if (!c.lb || typeof c.lb !== 'object') errors.push(`clusters[${i}] (${c.name}).lb: required object`);
  });
  s.endpoints!.forEach((e, i) => {
    if (!clusters.has(e.cluster)) errors.push(`endpoints[${i}].cluster: unknown cluster ${e.cluster}`);
    if (!Array.isArray(e.endpoints)) errors.push(`endpoints[${i}].endpoints: required array`);
    else e.endpoints.forEach((ep, j) => {
      if (typeof ep.address !== 'string' || !Number.isInteger(ep.port) || ep.port <= 0 || ep.port > 65535) {
        errors.push(`endpoints[${i}] (${e.cluster}).endpoints[${j}]: address and port 1-65535 required`);
      }
    });
  });
  s.routeConfigs!.forEach((rc, i) => {
    if (!Array.isArray(rc.virtualHosts)) { errors.push(`routeConfigs[${i}] (${rc.name}).virtualHosts: required array`); return; }
    rc.virtualHosts.forEach((vh, j) => {
      if (!Array.isArray(vh.domains) || !Array.isArray(vh.routes)) { errors.push(`routeConfigs[${i}].virtualHosts[${j}] (${vh.name}): domains and routes required`); return; }
      vh.routes.forEach((r, k) => {
        const at = `routeConfigs[${i}] (${rc.name}).virtualHosts[${j}] (${vh.name}).routes[${k}] (${r.name})`;
        if (!Array.isArray(r.match)) errors.push(`${at}.match: required array`);
        if (!r.retry || typeof r.retry !== 'object') errors.push(`${at}.retry: required object`);
        if (!r.action || typeof r.action !== 'object') { errors.push(`${at}.action: required object`); return; }
        if (r.action.kind === 'route') {
          if (!Array.isArray(r.action.destinations) || r.action.destinations.length === 0) errors.push(`${at}.action.destinations: at least one required`);
          else r.action.destinations.forEach((d, n) => {
            if (!clusters.has(d.cluster)) errors.push(`${at}.action.destinations[${n}].cluster: unknown cluster ${d.cluster}`);
            if (typeof d.weight !== 'number' || d.weight < 0) errors.push(`${at}.action.destinations[${n}].weight: non-negative number required`);
          });
        } else if (r.action.kind === 'redirect') {
          if (!r.action.redirect || typeof r.action.redirect.code !== 'number') errors.push(`${at}.action.redirect.code: required number`);
        } else if (r.action.kind === 'directResponse') {
          if (typeof r.action.status !== 'number' || r.action.status < 200 || r.action.status > 599) errors.push(`${at}.action.status: 200-599 required`);
        } else errors.push(`${at}.action.kind: unknown ${JSON.stringify((r.action as { kind?: unknown }).kind)}`);
        (r.mirrors ?? []).forEach((m, n) => {
          if (!clusters.has(m.cluster)) errors.push(`${at}.mirrors[${n}].cluster: unknown cluster ${m.cluster}`);
        });
      });
    });
  });
  const routeConfigs = new Set(s.routeConfigs!.map((r) => r.name));
  s.listeners!.forEach((l, i) => {
    if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) errors.push(`listeners[${i}] (${l.name}).port: 0-65535 required`);
    if (!routeConfigs.has(l.routeConfig)) errors.push(`listeners[${i}] (${l.name}).routeConfig: unknown route config ${l.routeConfig}`);
  });
  return errors.length ? { ok: false, errors } : { ok: true, snapshot: s as ProxySnapshot };
}
