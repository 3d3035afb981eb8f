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

/**
 * The `meta` resource: every top-level snapshot field that is not a resource of its own (format,
 * meshVersion, proxy, and any field added to the contract later), plus `$order`.
 */
export interface SnapshotMeta {
  format: typeof SNAPSHOT_FORMAT;
  meshVersion: string;
  proxy: ProxyIdentity;
  /** Resource names of each list, in the snapshot's order. */
  $order: { routeConfigs: string[]; clusters: string[]; endpoints: string[]; listeners: string[] };
  [field: string]: unknown;
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
 * and function members are dropped, undefined array items become null, toJSON is honoured).
 * Equal content ⇒ equal string.
 */
export function canonicalJson(value: unknown): string {
  return serialize(value) ?? 'null';
}

function serialize(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new TypeError('canonicalJson: BigInt is not JSON');
  }
  const obj = value as Record<string, unknown>;
  if (typeof obj.toJSON === 'function') return serialize((obj as { toJSON(): unknown }).toJSON());
  if (Array.isArray(obj)) {
    let out = '[';
    for (let i = 0; i < obj.length; i++) {
      if (i > 0) out += ',';
      out += serialize(obj[i]) ?? 'null';
    }
    return `${out}]`;
  }
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = serialize(obj[key]);
    if (member === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${member}`;
    first = false;
  }
  return `${out}}`;
}

export function sha256Hex16(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

// Resources are immutable once rendered (or received): their canonical JSON and hash are computed
// once per object, which makes renderer-shared objects and unchanged held resources free.
const jsonCache = new WeakMap<object, string>();
const hashCache = new WeakMap<object, string>();

/** Canonical JSON of one resource, cached per object (callers must not mutate resources). */
export function resourceJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return canonicalJson(value);
  let json = jsonCache.get(value);
  if (json === undefined) {
    json = canonicalJson(value);
    jsonCache.set(value, json);
  }
  return json;
}

/** Canonical hash of one resource (cached per object). */
export function resourceHash(value: unknown): string {
  if (value === null || typeof value !== 'object') return sha256Hex16(canonicalJson(value));
  let hash = hashCache.get(value);
  if (hash === undefined) {
    hash = sha256Hex16(resourceJson(value));
    hashCache.set(value, hash);
  }
  return hash;
}

const wireJsonCache = new WeakMap<object, string>();
const wireHashCache = new WeakMap<object, string>();

/** JSON.stringify of one resource, cached per object: what goes on the wire (native, several times faster than canonical). */
export function wireJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  let json = wireJsonCache.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    wireJsonCache.set(value, json);
  }
  return json;
}

/**
 * The operator's change-detection hash of one resource: sha256 of its wire JSON. The same content
 * with another key order hashes differently, which can only send a resource that did not need
 * sending, never skip one; proxies verify the snapshot with the canonical content hash.
 */
export function wireHash(value: unknown): string {
  if (value === null || typeof value !== 'object') return sha256Hex16(wireJson(value));
  let hash = wireHashCache.get(value);
  if (hash === undefined) {
    hash = sha256Hex16(wireJson(value));
    wireHashCache.set(value, hash);
  }
  return hash;
}

const LIST_FIELDS = new Set(['routeConfigs', 'clusters', 'endpoints', 'listeners']);
const SINGLE_RESOURCE_FIELDS = new Set(['inbound', 'mesh', 'telemetry']);

/**
 * The snapshot version: sha256 hex of the canonical JSON of the snapshot without `version`, first
 * 16 chars. Built from the per-resource canonical JSON (same bytes as canonicalJson of the whole).
 */
export function snapshotContentHash(snapshot: Omit<ProxySnapshot, 'version'> & { version?: string }): string {
  const record = snapshot as unknown as Record<string, unknown>;
  const hash = createHash('sha256');
  let first = true;
  hash.update('{');
  for (const key of Object.keys(record).sort()) {
    if (key === 'version') continue;
    const value = record[key];
    let json: string | undefined;
    if (LIST_FIELDS.has(key) && Array.isArray(value)) json = `[${value.map((item) => (item === undefined ? 'null' : resourceJson(item))).join(',')}]`;
    else if (SINGLE_RESOURCE_FIELDS.has(key) && value !== undefined) json = resourceJson(value);
    else json = serialize(value);
    if (json === undefined) continue;
    hash.update(`${first ? '' : ','}${JSON.stringify(key)}:`);
    hash.update(json);
    first = false;
  }
  hash.update('}');
  return hash.digest('hex').slice(0, 16);
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

/** Splits a snapshot into named resources (no hashing). */
export function splitResources(snapshot: ProxySnapshot): Map<ResourceName, unknown> {
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
    $order: { routeConfigs: routeNames, clusters: clusterNames, endpoints: endpointNames, listeners: listenerNames },
  };
  for (const [key, value] of Object.entries(snapshot)) {
    if (key !== 'version' && !LIST_FIELDS.has(key) && !SINGLE_RESOURCE_FIELDS.has(key)) meta[key] = value;
  }
  resources.set('meta', meta);
  return resources;
}

/** Splits a snapshot into named resources with their change-detection hashes (wireHash). `version` must already be correct. */
export function splitSnapshot(snapshot: ProxySnapshot): SplitSnapshot {
  const resources = splitResources(snapshot);
  const hashes = new Map<ResourceName, string>();
  for (const [name, value] of resources) hashes.set(name, wireHash(value));
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
  if (!meta || typeof meta !== 'object' || !meta.$order) throw new SnapshotAssemblyError('resource meta is malformed');
  const { $order: order, ...fields } = meta;
  return {
    ...fields,
    format: meta.format,
    version,
    meshVersion: meta.meshVersion,
    proxy: meta.proxy,
    mesh: required<MeshSettings>(resources, 'mesh'),
    routeConfigs: order.routeConfigs.map((n) => required<RouteConfig>(resources, n)),
    clusters: order.clusters.map((n) => required<UpstreamCluster>(resources, n)),
    endpoints: order.endpoints.map((n) => required<ClusterLoadAssignment>(resources, n)),
    listeners: order.listeners.map((n) => required<GatewayListener>(resources, n)),
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
