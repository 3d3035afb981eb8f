import { createHash } from 'node:crypto';
import { SNAPSHOT_FORMAT } from '../mesh/snapshot.js';
import type {
  ClusterLoadAssignment,
  GatewayListener,
  InboundPolicy,
  MeshSettings,
  ProxyIdentity,
  ProxySnapshot,
  RouteConfig,
  TelemetrySettings,
  UpstreamCluster,
} from '../mesh/snapshot.js';

/**
 * A snapshot as a set of named resources, so discovery can push only what changed.
 *
 * Names: `routeConfig/<name>`, `cluster/<name>`, `endpoints/<cluster>`, `listener/<name>`, `inbound`,
 * `mesh`, `telemetry`, `meta`. `meta` carries format, meshVersion, proxy identity and the order of
 * every list, so a reassembled snapshot serialises exactly like the rendered one (its hash matches).
 */
export type ResourceName = string;

export interface SnapshotMeta {
  format: typeof SNAPSHOT_FORMAT;
  meshVersion: string;
  proxy: ProxyIdentity;
  /** Resource names of each list, in the snapshot's order. */
  order: { routeConfigs: string[]; clusters: string[]; endpoints: string[]; listeners: string[] };
}

export interface SplitSnapshot {
  version: string;
  /** name → resource value (plain JSON). */
  resources: Map<ResourceName, unknown>;
  /** name → content hash of that resource. */
  hashes: Map<ResourceName, string>;
}

// ---------------------------------------------------------------- canonical JSON and hashes

/**
 * JSON with object keys sorted at every depth; otherwise the same as JSON.stringify (undefined
 * object members are dropped, undefined array items become null). Equal content ⇒ equal string.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return sortKeys((value as { toJSON(): unknown }).toJSON());
  }
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : sortKeys(item)));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined || typeof member === 'function') continue;
    out[key] = sortKeys(member);
  }
  return out;
}

export function sha256Hex16(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** The snapshot version: sha256 hex of the canonical JSON of the snapshot without `version`, first 16 chars. */
export function snapshotContentHash(snapshot: Omit<ProxySnapshot, 'version'> & { version?: string }): string {
  const { version: _ignored, ...rest } = snapshot;
  void _ignored;
  return sha256Hex16(canonicalJson(rest));
}

// Resources shared between proxies (the renderer may reuse objects) are hashed once.
const hashCache = new WeakMap<object, string>();

export function resourceHash(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    const cached = hashCache.get(value);
    if (cached !== undefined) return cached;
    const hash = sha256Hex16(canonicalJson(value));
    hashCache.set(value, hash);
    return hash;
  }
  return sha256Hex16(canonicalJson(value));
}

// ---------------------------------------------------------------- split and assemble

/** Gives each item a unique name: the base name, or `<base>#<n>` for the n-th duplicate. */
function uniqueNames(bases: string[]): string[] {
  const seen = new Map<string, number>();
  return bases.map((base) => {
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}#${count}`;
  });
}

/** Splits a snapshot into named resources with their hashes. `version` must already be correct. */
export function splitSnapshot(snapshot: ProxySnapshot): SplitSnapshot {
  const resources = new Map<ResourceName, unknown>();
  const routeNames = uniqueNames(snapshot.routeConfigs.map((r) => `routeConfig/${r.name}`));
  const clusterNames = uniqueNames(snapshot.clusters.map((c) => `cluster/${c.name}`));
  const endpointNames = uniqueNames(snapshot.endpoints.map((e) => `endpoints/${e.cluster}`));
  const listenerNames = uniqueNames(snapshot.listeners.map((l) => `listener/${l.name}`));
  snapshot.routeConfigs.forEach((r, i) => resources.set(routeNames[i], r));
  snapshot.clusters.forEach((c, i) => resources.set(clusterNames[i], c));
  snapshot.endpoints.forEach((e, i) => resources.set(endpointNames[i], e));
  snapshot.listeners.forEach((l, i) => resources.set(listenerNames[i], l));
  resources.set('inbound', snapshot.inbound);
  resources.set('mesh', snapshot.mesh);
  resources.set('telemetry', snapshot.telemetry);
  const meta: SnapshotMeta = {
    format: snapshot.format,
    meshVersion: snapshot.meshVersion,
    proxy: snapshot.proxy,
    order: { routeConfigs: routeNames, clusters: clusterNames, endpoints: endpointNames, listeners: listenerNames },
  };
  resources.set('meta', meta);
  const hashes = new Map<ResourceName, string>();
  for (const [name, value] of resources) hashes.set(name, resourceHash(value));
  return { version: snapshot.version, resources, hashes };
}

export class SnapshotAssemblyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotAssemblyError';
  }
}

function required<T>(resources: ReadonlyMap<ResourceName, unknown>, name: string): T {
  if (!resources.has(name)) throw new SnapshotAssemblyError(`resource ${name} is missing`);
  return resources.get(name) as T;
}

/** Rebuilds a full snapshot from named resources; throws SnapshotAssemblyError when one is missing. */
export function assembleSnapshot(version: string, resources: ReadonlyMap<ResourceName, unknown>): ProxySnapshot {
  const meta = required<SnapshotMeta>(resources, 'meta');
  if (!meta || typeof meta !== 'object' || !meta.order) throw new SnapshotAssemblyError('resource meta is malformed');
  return {
    format: meta.format,
    version,
    meshVersion: meta.meshVersion,
    proxy: meta.proxy,
    mesh: required<MeshSettings>(resources, 'mesh'),
    routeConfigs: meta.order.routeConfigs.map((n) => required<RouteConfig>(resources, n)),
    clusters: meta.order.clusters.map((n) => required<UpstreamCluster>(resources, n)),
    endpoints: meta.order.endpoints.map((n) => required<ClusterLoadAssignment>(resources, n)),
    listeners: meta.order.listeners.map((n) => required<GatewayListener>(resources, n)),
    inbound: required<InboundPolicy>(resources, 'inbound'),
    telemetry: required<TelemetrySettings>(resources, 'telemetry'),
  };
}

export interface ResourceDelta {
  /** Resources that are new or whose hash changed. */
  changed: Record<ResourceName, unknown>;
  removed: ResourceName[];
}

/** What a holder of `base` (name → hash) needs to reach `next`. A null base means everything. */
export function diffResources(base: ReadonlyMap<ResourceName, string> | null, next: SplitSnapshot): ResourceDelta {
  const changed: Record<ResourceName, unknown> = {};
  for (const [name, hash] of next.hashes) {
    if (base === null || base.get(name) !== hash) changed[name] = next.resources.get(name);
  }
  const removed: ResourceName[] = [];
  if (base !== null) for (const name of base.keys()) if (!next.hashes.has(name)) removed.push(name);
  return { changed, removed };
}
