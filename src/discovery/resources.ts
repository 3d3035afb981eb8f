import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
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
  VirtualHost,
} from '../mesh/snapshot.js';

/**
 * A snapshot as a set of named resources, so discovery can push only what changed.
 *
 * Names: `routeConfig/<name>`, `cluster/<name>`, `endpoints/<cluster>`, `listener/<name>`, `inbound`,
 * `mesh`, `telemetry`, `meta`; with layout 2 also `virtualHost/<routeConfig>/<name>` and
 * `order/<list>`. `meta` carries format, meshVersion, proxy identity (and in layout 1 the order of
 * every list), so a reassembled snapshot serialises exactly like the rendered one (its hash matches).
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
  // A resource nested in a larger value (a virtual host in its route config) was serialised already.
  const known = jsonCache.get(obj);
  if (known !== undefined) return known;
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
 * What one content-hash computation leaves for the next (a client verifying successive deltas): per
 * top-level member in key order, the value hashed and the hash state before it. The next snapshot
 * resumes from the state before its first member that differs (a list differs when one item is
 * another object), so a delta that changed one virtual host re-hashes only `routeConfigs` and
 * `telemetry`, and one that changed an endpoint set skips `clusters`.
 */
export interface ContentHashMemo {
  last?: { keys: readonly string[]; values: readonly unknown[]; states: readonly Hash[]; wrote: readonly boolean[] };
}

function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameMember(a: unknown, b: unknown): boolean {
  return a === b || (Array.isArray(a) && Array.isArray(b) && sameItems(a, b));
}

/**
 * The snapshot version: sha256 hex of the canonical JSON of the snapshot without `version`, first
 * 16 chars. Fed to the hash piece by piece from the per-resource canonical JSON (the same bytes as
 * canonicalJson of the whole, never assembled into one large string).
 */
export function snapshotContentHash(snapshot: Omit<ProxySnapshot, 'version'> & { version?: string }, memo?: ContentHashMemo): string {
  const record = snapshot as unknown as Record<string, unknown>;
  const keys = Object.keys(record).filter((key) => key !== 'version').sort();
  const values = keys.map((key) => record[key]);
  const last = memo?.last;
  let from = 0;
  let hash: Hash;
  let wroteAny = false;
  if (last) {
    while (from < keys.length && from < last.keys.length && last.keys[from] === keys[from] && sameMember(last.values[from], values[from])) from++;
    hash = last.states[from].copy();
    wroteAny = last.wrote[from];
  } else {
    hash = createHash('sha256').update('{');
  }
  // states[k]: the hash state before member k (stored states are never updated, only copied).
  const states: Hash[] | null = memo ? (last ? last.states.slice(0, from + 1) : [hash.copy()]) : null;
  const wrote: boolean[] | null = memo ? (last ? last.wrote.slice(0, from + 1) : [false]) : null;
  for (let k = from; k < keys.length; k++) {
    if (writeMember(hash, keys[k], values[k], wroteAny)) wroteAny = true;
    if (states && wrote) {
      states.push(hash.copy());
      wrote.push(wroteAny);
    }
  }
  if (memo && states && wrote) memo.last = { keys, values, states, wrote };
  hash.update('}');
  return hash.digest('hex').slice(0, 16);
}

/** Feeds `"key":json` (with a leading comma when a member precedes it); false when the member serialises to nothing. */
function writeMember(hash: Hash, key: string, value: unknown, comma: boolean): boolean {
  if (LIST_FIELDS.has(key) && Array.isArray(value)) {
    // Fed piece by piece: cached pieces are hashed as they are, never copied into one large string.
    hash.update(`${comma ? ',' : ''}${JSON.stringify(key)}:[`);
    for (let i = 0; i < value.length; i++) {
      if (i > 0) hash.update(',');
      if (value[i] === undefined) hash.update('null');
      else if (key === 'routeConfigs') writeRouteConfig(hash, value[i]);
      else hash.update(resourceJson(value[i]));
    }
    hash.update(']');
    return true;
  }
  const json = SINGLE_RESOURCE_FIELDS.has(key) && value !== undefined ? resourceJson(value) : serialize(value);
  if (json === undefined) return false;
  hash.update(`${comma ? ',' : ''}${JSON.stringify(key)}:`);
  hash.update(json);
  return true;
}

/**
 * A route config fed member by member, its virtual hosts one cached JSON at a time: a client that
 * reassembles a route config from virtual host resources (layout 2) serialises only the hosts that
 * changed and builds no string of the whole route config.
 */
function writeRouteConfig(hash: Hash, value: unknown): void {
  const rc = value as Record<string, unknown> | null;
  const known = rc !== null && typeof rc === 'object' ? jsonCache.get(rc) : undefined;
  if (known !== undefined || rc === null || typeof rc !== 'object' || Array.isArray(rc) || typeof rc.toJSON === 'function' || !Array.isArray(rc.virtualHosts)) {
    hash.update(known ?? resourceJson(value));
    return;
  }
  let comma = false;
  hash.update('{');
  for (const key of Object.keys(rc).sort()) {
    if (key === 'virtualHosts') {
      const hosts = rc.virtualHosts as unknown[];
      hash.update(`${comma ? ',' : ''}"virtualHosts":[`);
      for (let i = 0; i < hosts.length; i++) {
        if (i > 0) hash.update(',');
        hash.update(hosts[i] === undefined ? 'null' : resourceJson(hosts[i]));
      }
      hash.update(']');
      comma = true;
      continue;
    }
    const member = serialize(rc[key]);
    if (member === undefined) continue;
    hash.update(`${comma ? ',' : ''}${JSON.stringify(key)}:${member}`);
    comma = true;
  }
  hash.update('}');
}

// ---------------------------------------------------------------- split and assemble

/**
 * How a snapshot is cut into resources. Layout 1: `meta` carries `$order` and a route config is one
 * resource. Layout 2 (hello feature RESOURCES_V2_FEATURE): each virtual host is a resource of its
 * own (`virtualHost/<routeConfig>/<name>`; the route config keeps `$virtualHosts`, their names), and
 * list orders are resources (`order/<list>`) shared by every proxy of a shape, so `meta` stays small.
 */
export type ResourceLayout = 1 | 2;
export const RESOURCES_V2_FEATURE = 'resources-v2';

const LIST_ORDER = ['routeConfigs', 'clusters', 'endpoints', 'listeners'] as const;
type ListField = (typeof LIST_ORDER)[number];

/** Gives each item a unique name: the base name, or `<base>#<n>` for the n-th duplicate. */
function uniqueNames(bases: string[]): string[] {
  const seen = new Map<string, number>();
  return bases.map((base) => {
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}#${count}`;
  });
}

/**
 * Resources of one part of a snapshot (a list, a single resource, meta). Built once per rendered
 * object and cached, so proxies that share objects share groups: the diff skips a group that is the
 * same object as the base's, and its encoded bytes are reused for every stream.
 */
export class ResourceGroup {
  private index: Map<ResourceName, string> | null = null;

  constructor(
    /** Which part of the snapshot (a base and a next group of the same kind are diffed together). */
    readonly kind: string,
    readonly names: readonly ResourceName[],
    readonly values: readonly unknown[],
    readonly hashes: readonly string[],
  ) {}

  /** name → hash (built on first use, then cached with the group). */
  get byName(): ReadonlyMap<ResourceName, string> {
    if (this.index === null) {
      this.index = new Map();
      for (let i = 0; i < this.names.length; i++) this.index.set(this.names[i], this.hashes[i]);
    }
    return this.index;
  }
}

function group(kind: string, names: ResourceName[], values: unknown[]): ResourceGroup {
  return new ResourceGroup(kind, names, values, values.map((v) => wireHash(v)));
}

const LIST_PREFIX: Record<ListField, string> = { routeConfigs: 'routeConfig', clusters: 'cluster', endpoints: 'endpoints', listeners: 'listener' };

function listBaseName(field: ListField, item: unknown): string {
  const value = item as { name?: string; cluster?: string };
  return `${LIST_PREFIX[field]}/${field === 'endpoints' ? value.cluster : value.name}`;
}

// Groups cached per rendered list/object: WeakMap<source, group>, one map per (layout, field).
const groupCaches = new Map<string, WeakMap<object, ResourceGroup[]>>();

function cached(key: string, source: unknown, build: () => ResourceGroup[]): ResourceGroup[] {
  if (source === null || typeof source !== 'object') return build();
  let cache = groupCaches.get(key);
  if (!cache) groupCaches.set(key, (cache = new WeakMap()));
  let groups = cache.get(source);
  if (!groups) cache.set(source, (groups = build()));
  return groups;
}

const EMPTY_LIST: readonly unknown[] = Object.freeze([]);

function listGroups(field: ListField, rendered: readonly unknown[], layout: ResourceLayout): ResourceGroup[] {
  // Every empty list is the same list (renderers often build a fresh [] per proxy).
  const list = rendered.length === 0 ? EMPTY_LIST : rendered;
  return cached(`${layout}|${field}`, list, () => {
    const names = uniqueNames(list.map((item) => listBaseName(field, item)));
    if (layout === 1) return [group(field, names, [...list])];
    const order = group(`order/${field}`, [`order/${field}`], [names]);
    if (field !== 'routeConfigs') return [group(field, names, [...list]), order];
    // Layout 2: a route config without its virtual hosts, which become resources of their own.
    const hostNames: string[] = [];
    const hosts: unknown[] = [];
    const shells = list.map((item, i) => {
      const rc = item as { virtualHosts?: unknown };
      if (!Array.isArray(rc.virtualHosts)) return rc;
      const own = uniqueNames(rc.virtualHosts.map((vh) => `virtualHost/${names[i].slice('routeConfig/'.length)}/${(vh as { name?: string }).name}`));
      hostNames.push(...own);
      hosts.push(...rc.virtualHosts);
      const { virtualHosts: _hosts, ...shell } = rc;
      void _hosts;
      return { ...shell, $virtualHosts: own };
    });
    return [group(field, names, shells), group('virtualHosts', uniqueNames(hostNames), hosts), order];
  });
}

function singleGroup(field: 'inbound' | 'mesh' | 'telemetry', value: unknown): ResourceGroup[] {
  return cached(field, value, () => [group(field, [field], [value])]);
}

/** A snapshot as resource groups; `resources` and `hashes` are built on demand (tests, debugging). */
export class SplitSnapshot {
  private flat: { resources: Map<ResourceName, unknown>; hashes: Map<ResourceName, string> } | null = null;

  constructor(
    readonly version: string,
    readonly layout: ResourceLayout,
    readonly groups: readonly ResourceGroup[],
  ) {}

  private flatten(): { resources: Map<ResourceName, unknown>; hashes: Map<ResourceName, string> } {
    if (this.flat === null) {
      const resources = new Map<ResourceName, unknown>();
      const hashes = new Map<ResourceName, string>();
      for (const g of this.groups) {
        for (let i = 0; i < g.names.length; i++) {
          resources.set(g.names[i], g.values[i]);
          hashes.set(g.names[i], g.hashes[i]);
        }
      }
      this.flat = { resources, hashes };
    }
    return this.flat;
  }

  /** name → resource value (plain JSON). */
  get resources(): Map<ResourceName, unknown> {
    return this.flatten().resources;
  }

  /** name → change-detection hash of that resource. */
  get hashes(): Map<ResourceName, string> {
    return this.flatten().hashes;
  }
}

/** Splits a snapshot into resource groups with their change-detection hashes (wireHash). `version` must already be correct. */
export function splitSnapshot(snapshot: ProxySnapshot, layout: ResourceLayout = 1): SplitSnapshot {
  const groups: ResourceGroup[] = [];
  const names: Partial<Record<ListField, readonly string[]>> = {};
  for (const field of LIST_ORDER) {
    const list = listGroups(field, snapshot[field] as readonly unknown[], layout);
    names[field] = list[0].names;
    groups.push(...list);
  }
  groups.push(...singleGroup('inbound', snapshot.inbound), ...singleGroup('mesh', snapshot.mesh), ...singleGroup('telemetry', snapshot.telemetry));
  const meta: Record<string, unknown> = { format: snapshot.format, meshVersion: snapshot.meshVersion, proxy: snapshot.proxy };
  if (layout === 1) meta.$order = names;
  for (const [key, value] of Object.entries(snapshot)) {
    if (key !== 'version' && !LIST_FIELDS.has(key) && !SINGLE_RESOURCE_FIELDS.has(key)) meta[key] = value;
  }
  groups.push(group('meta', ['meta'], [meta]));
  return new SplitSnapshot(snapshot.version, layout, groups);
}

/** Splits a snapshot into named resources (what a client holds of the snapshot it runs). */
export function splitResources(snapshot: ProxySnapshot, layout: ResourceLayout = 1): Map<ResourceName, unknown> {
  return splitSnapshot(snapshot, layout).resources;
}

export class SnapshotAssemblyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotAssemblyError';
  }
}

// Values deepFreeze froze whole: nothing reachable from them can change, so results computed from
// them (canonical JSON, validation) can be kept per object.
const deepFrozen = new WeakSet<object>();

function freezeAll(value: unknown): void {
  if (value === null || typeof value !== 'object' || deepFrozen.has(value)) return;
  for (const key of Object.keys(value)) freezeAll((value as Record<string, unknown>)[key]);
  Object.freeze(value);
}

/**
 * Freezes a value and everything reachable from it (what a client does with the resources it
 * receives: they are shared between successive snapshots, and caches are kept per object).
 */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || deepFrozen.has(value)) return value;
  freezeAll(value);
  deepFrozen.add(value);
  return value;
}

/**
 * deepFreeze for a snapshot assembleSnapshot built from deep-frozen resources only (what a client
 * holds): only the containers assembly made are left to freeze (the snapshot, its lists, route
 * configs rebuilt from their virtual hosts), so it costs nothing per unchanged resource.
 */
export function freezeAssembled(snapshot: ProxySnapshot): ProxySnapshot {
  if (deepFrozen.has(snapshot)) return snapshot;
  for (const rc of snapshot.routeConfigs) {
    if (Object.isFrozen(rc)) continue;
    Object.freeze(rc.virtualHosts);
    Object.freeze(rc);
  }
  for (const list of [snapshot.routeConfigs, snapshot.clusters, snapshot.endpoints, snapshot.listeners]) Object.freeze(list);
  Object.freeze(snapshot);
  deepFrozen.add(snapshot);
  return snapshot;
}

/** Whether deepFreeze froze this value (and so everything in it). */
export function isDeepFrozen(value: unknown): boolean {
  return value !== null && typeof value === 'object' && deepFrozen.has(value);
}

function required<T>(resources: ReadonlyMap<ResourceName, unknown>, name: string): T {
  if (!resources.has(name)) throw new SnapshotAssemblyError(`resource ${name} is missing`);
  return resources.get(name) as T;
}

// shell → the route config last assembled from it: reused while its virtual hosts are the same
// objects, so an unchanged route config keeps its identity (and every cache keyed on it).
const assembledRouteConfigs = new WeakMap<object, RouteConfig>();

function routeConfigFrom(resources: ReadonlyMap<ResourceName, unknown>, name: string): RouteConfig {
  const shell = required<RouteConfig & { $virtualHosts?: string[] }>(resources, name);
  if (!shell || typeof shell !== 'object' || !Array.isArray(shell.$virtualHosts)) return shell;
  const hosts = shell.$virtualHosts.map((n) => required<VirtualHost>(resources, n));
  const previous = assembledRouteConfigs.get(shell);
  if (previous && sameItems(previous.virtualHosts, hosts)) return previous;
  const { $virtualHosts: _names, ...rest } = shell;
  void _names;
  const rc = { ...rest, virtualHosts: hosts };
  assembledRouteConfigs.set(shell, rc);
  return rc;
}

/** Rebuilds a full snapshot from named resources (either layout); throws SnapshotAssemblyError when one is missing. */
export function assembleSnapshot(version: string, resources: ReadonlyMap<ResourceName, unknown>): ProxySnapshot {
  // Layout 2 has no $order in meta (the orders are resources of their own).
  const meta = required<Partial<Pick<SnapshotMeta, '$order'>> & Pick<SnapshotMeta, 'format' | 'meshVersion' | 'proxy'> & Record<string, unknown>>(resources, 'meta');
  if (!meta || typeof meta !== 'object') throw new SnapshotAssemblyError('resource meta is malformed');
  const { $order: metaOrder, ...fields } = meta;
  const order = (field: ListField): string[] => {
    const names = metaOrder ? metaOrder[field] : required<string[]>(resources, `order/${field}`);
    if (!Array.isArray(names)) throw new SnapshotAssemblyError(`the order of ${field} is malformed`);
    return names;
  };
  return {
    ...fields,
    format: meta.format,
    version,
    meshVersion: meta.meshVersion,
    proxy: meta.proxy,
    mesh: required<MeshSettings>(resources, 'mesh'),
    routeConfigs: order('routeConfigs').map((n) => routeConfigFrom(resources, n)),
    clusters: order('clusters').map((n) => required<UpstreamCluster>(resources, n)),
    endpoints: order('endpoints').map((n) => required<ClusterLoadAssignment>(resources, n)),
    listeners: order('listeners').map((n) => required<GatewayListener>(resources, n)),
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

/** The delta of one group against the base's group of the same kind, encoded for the wire. */
export interface EncodedGroupDelta {
  /** `"name":json` members joined by commas, as bytes (null when nothing changed). */
  members: Buffer | null;
  changed: number;
  removed: ResourceName[];
}

/** A snapshot delta ready for the wire: the `resources` object as chunks shared between streams. */
export interface EncodedDelta {
  /** The bytes of the `resources` object (`{`, members, commas, `}`): write them in order. */
  chunks: Buffer[];
  bytes: number;
  changed: number;
  removed: ResourceName[];
  /** The same as one string (tests, debugging). */
  readonly resources: string;
}

const NO_BASE = new ResourceGroup('none', [], [], []);
const EMPTY_DELTA: EncodedGroupDelta = { members: null, changed: 0, removed: [] };
const OPEN = Buffer.from('{');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from('}');
// next group → base group → encoded delta: every stream that moves between the same two groups
// writes the same bytes (one Buffer, not one copy per stream: a cold start writes ~100 KB per proxy).
const encodedDeltas = new WeakMap<ResourceGroup, WeakMap<ResourceGroup, EncodedGroupDelta>>();

function encodeGroupDelta(base: ResourceGroup | undefined, next: ResourceGroup): EncodedGroupDelta {
  if (base === next) return EMPTY_DELTA;
  const key = base ?? NO_BASE;
  let byBase = encodedDeltas.get(next);
  if (!byBase) encodedDeltas.set(next, (byBase = new WeakMap()));
  let delta = byBase.get(key);
  if (delta === undefined) {
    const parts: string[] = [];
    const held = base?.byName;
    for (let i = 0; i < next.names.length; i++) {
      if (held?.get(next.names[i]) === next.hashes[i]) continue;
      parts.push(`${JSON.stringify(next.names[i])}:${wireJson(next.values[i])}`);
    }
    const removed: ResourceName[] = [];
    if (base) {
      const now = next.byName;
      for (const name of base.names) if (!now.has(name)) removed.push(name);
    }
    delta = { members: parts.length > 0 ? Buffer.from(parts.join(','), 'utf8') : null, changed: parts.length, removed };
    byBase.set(key, delta);
  }
  return delta;
}

/**
 * The wire delta from `base` (the groups a proxy holds; null: nothing, send everything) to `next`:
 * groups are matched by kind, identical groups cost nothing, other pairs are encoded once and cached.
 */
export function encodeDelta(base: readonly ResourceGroup[] | null, next: readonly ResourceGroup[]): EncodedDelta {
  const chunks: Buffer[] = [OPEN];
  const removed: ResourceName[] = [];
  let changed = 0;
  let bytes = OPEN.length + CLOSE.length;
  for (const g of next) {
    const delta = encodeGroupDelta(base === null ? undefined : (base.find((b) => b.kind === g.kind) ?? NO_BASE), g);
    if (delta.members) {
      if (chunks.length > 1) {
        chunks.push(COMMA);
        bytes += COMMA.length;
      }
      chunks.push(delta.members);
      bytes += delta.members.length;
    }
    changed += delta.changed;
    if (delta.removed.length > 0) removed.push(...delta.removed);
  }
  if (base !== null) {
    for (const b of base) if (!next.some((g) => g.kind === b.kind)) removed.push(...b.names);
  }
  chunks.push(CLOSE);
  return {
    chunks,
    bytes,
    changed,
    removed,
    get resources() {
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}
