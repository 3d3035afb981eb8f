import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { isDeepFrozen } from '../discovery/resources.js';
import { SNAPSHOT_JSON_SCHEMA, validateSnapshot } from '../mesh/snapshot-schema.js';
import type { ClusterLoadAssignment, GatewayListener, ProxySnapshot, Route, RouteMatch, StringMatcher, UpstreamCluster, VirtualHost } from '../mesh/snapshot.js';
import {
  BUILTIN_CLUSTERS,
  checkClusterShape,
  checkEndpointsShape,
  checkListenerShape,
  checkSnapshotFrame,
  checkSnapshotShape,
  checkVirtualHostShape,
  type SnapshotCheck,
} from './snapshot-check.js';

/** How many snapshots each path decided (tests and benches read them). */
export const snapshotValidationCounters = { whole: 0, incremental: 0 };

/**
 * The proxy's validation gate: the snapshot JSON schema and reference checks of src/mesh, then the
 * structural checks the proxy itself relies on when it compiles a snapshot.
 *
 * A snapshot the discovery client assembled is deep-frozen (src/discovery/resources deepFreeze):
 * nothing in it can change, and successive snapshots share every resource a delta left alone. Such
 * a snapshot is checked against the last one accepted on the same stream: a resource in the same
 * place was accepted with it, any other is checked once (schema, shape, regexes; remembered per
 * object), and cross-references are checked wherever either side changed. So a delta costs what
 * it changed. A stream's first snapshot, anything this path does not accept, and every snapshot
 * that is not deep-frozen go through the whole-snapshot check, which gives the errors.
 */
export function validateProxySnapshot(value: unknown): SnapshotCheck {
  if (!isDeepFrozen(value)) return validateWhole(value);
  const s = value as ProxySnapshot;
  const stream = s.proxy !== null && typeof s.proxy === 'object' ? (s.proxy as object) : null;
  const prev = stream ? lastAccepted.get(stream) : undefined;
  if (prev) {
    snapshotValidationCounters.incremental++;
    const accepted = acceptsFrozenSnapshot(s, prev);
    if (accepted && stream) {
      lastAccepted.set(stream, accepted);
      return { ok: true, snapshot: s };
    }
  }
  // A stream's first snapshot (its `proxy` object never seen): one whole-schema pass is cheaper
  // than a pass per resource, and a valid whole makes every resource in it valid. A refusal: the
  // whole check names every error (and is the reference).
  const whole = validateWhole(s);
  if (whole.ok && stream) lastAccepted.set(stream, acceptAll(s));
  return whole;
}

/** The whole-snapshot check (also the reference the per-resource path must agree with). */
export function validateWhole(value: unknown): SnapshotCheck {
  snapshotValidationCounters.whole++;
  const schema = validateSnapshot(value);
  if (!schema.ok) return schema;
  return checkSnapshotShape(value);
}

// ---------------------------------------------------------------- per-resource validation

type Schema = Record<string, unknown>;
const LIST_FIELDS = ['routeConfigs', 'clusters', 'endpoints', 'listeners'] as const;
const OBJECT_FIELDS = ['proxy', 'mesh', 'inbound', 'telemetry'] as const;

function propertiesOf(schema: Schema): Record<string, Schema> {
  return schema.properties as Record<string, Schema>;
}

function itemsOf(schema: Schema): Schema {
  return schema.items as Schema;
}

// The snapshot schema cut at resource boundaries: the top level with lists and objects left as
// bare arrays/anything (each checked on its own), a route config with its virtual hosts as a bare array.
const rootProperties = propertiesOf(SNAPSHOT_JSON_SCHEMA);
const routeConfigSchema = itemsOf(rootProperties.routeConfigs);
const frameSchema: Schema = {
  ...SNAPSHOT_JSON_SCHEMA,
  properties: {
    ...rootProperties,
    ...Object.fromEntries(LIST_FIELDS.map((field) => [field, { type: 'array' }])),
    ...Object.fromEntries(OBJECT_FIELDS.map((field) => [field, {}])),
  },
};
const routeConfigShellSchema: Schema = { ...routeConfigSchema, properties: { ...propertiesOf(routeConfigSchema), virtualHosts: { type: 'array' } } };

// Compiled lazily: a proxy that never receives a deep-frozen snapshot does not pay for them.
let compiled: Record<'frame' | 'routeConfig' | 'virtualHost' | 'cluster' | 'endpoints' | 'listener' | (typeof OBJECT_FIELDS)[number], ValidateFunction> | null = null;

function validators(): NonNullable<typeof compiled> {
  if (compiled === null) {
    // The options of src/mesh/snapshot-schema.ts, so each part accepts exactly what the whole schema accepts.
    const ajv = new Ajv({ allErrors: false, strict: true, strictRequired: false, allowUnionTypes: true, discriminator: true });
    compiled = {
      frame: ajv.compile(frameSchema),
      routeConfig: ajv.compile(routeConfigShellSchema),
      virtualHost: ajv.compile(itemsOf(propertiesOf(routeConfigSchema).virtualHosts)),
      cluster: ajv.compile(itemsOf(rootProperties.clusters)),
      endpoints: ajv.compile(itemsOf(rootProperties.endpoints)),
      listener: ajv.compile(itemsOf(rootProperties.listeners)),
      proxy: ajv.compile(rootProperties.proxy),
      mesh: ajv.compile(rootProperties.mesh),
      inbound: ajv.compile(rootProperties.inbound),
      telemetry: ajv.compile(rootProperties.telemetry),
    };
  }
  return compiled;
}

// Resources (deep-frozen objects) that passed their own checks, per kind.
const accepted = new Map<string, WeakSet<object>>();
// Clusters each accepted virtual host's routes name (destinations and mirrors).
const namedClusters = new WeakMap<object, readonly string[]>();

function acceptedOnce(kind: string, value: unknown, check: (value: unknown) => boolean): boolean {
  if (value === null || typeof value !== 'object') return check(value);
  const seen = seenAs(kind);
  if (seen.has(value)) return true;
  if (!check(value)) return false;
  seen.add(value);
  return true;
}

const NO_ERRORS = (run: (errors: string[]) => void): boolean => {
  const errors: string[] = [];
  run(errors);
  return errors.length === 0;
};

function acceptsVirtualHost(value: unknown): boolean {
  const v = validators();
  const ok = acceptedOnce('virtualHost', value, (vh) => {
    if (!v.virtualHost(vh)) return false;
    const host = vh as VirtualHost;
    return NO_ERRORS((errors) => checkVirtualHostShape(host, 'routeConfig', '', 0, null, errors)) && host.routes.every(regexesCompile);
  });
  if (ok) rememberNamedClusters(value as VirtualHost);
  return ok;
}

function rememberNamedClusters(vh: VirtualHost): void {
  if (namedClusters.has(vh)) return;
  const names: string[] = [];
  for (const r of vh.routes) {
    if (r.action.kind === 'route') for (const d of r.action.destinations) names.push(d.cluster);
    for (const m of r.mirrors ?? []) names.push(m.cluster);
  }
  namedClusters.set(vh, names);
}

function seenAs(kind: string): WeakSet<object> {
  let seen = accepted.get(kind);
  if (!seen) accepted.set(kind, (seen = new WeakSet()));
  return seen;
}

/** Records every resource of a snapshot the whole check accepted. */
function acceptAll(s: ProxySnapshot): Accepted {
  // Compiled now (~0.1 s once), while the stream's first snapshot is handled, not on its first delta.
  validators();
  for (const field of OBJECT_FIELDS) seenAs(field).add(s[field]);
  for (const c of s.clusters) seenAs('cluster').add(c);
  for (const e of s.endpoints) seenAs('endpoints').add(e);
  for (const l of s.listeners) seenAs('listener').add(l);
  for (const rc of s.routeConfigs) {
    seenAs('routeConfig').add(rc);
    for (const vh of rc.virtualHosts) {
      seenAs('virtualHost').add(vh);
      rememberNamedClusters(vh);
    }
  }
  return { snapshot: s, clusterNames: new Set(s.clusters.map((c) => c.name)), routeConfigNames: new Set(s.routeConfigs.map((rc) => rc.name)) };
}

/** What the last accepted snapshot of a stream (keyed by its `proxy` object) leaves for the next. */
interface Accepted {
  snapshot: ProxySnapshot;
  clusterNames: ReadonlySet<string>;
  routeConfigNames: ReadonlySet<string>;
}

const lastAccepted = new WeakMap<object, Accepted>();

function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function acceptsCluster(c: unknown): boolean {
  return acceptedOnce('cluster', c, (x) => validators().cluster(x) && NO_ERRORS((errors) => checkClusterShape(x as UpstreamCluster, 0, errors)));
}

function acceptsEndpoints(e: unknown): boolean {
  return acceptedOnce('endpoints', e, (x) => validators().endpoints(x) && NO_ERRORS((errors) => checkEndpointsShape(x as ClusterLoadAssignment, 0, null, errors)));
}

function acceptsListener(l: unknown): boolean {
  return acceptedOnce('listener', l, (x) => validators().listener(x) && NO_ERRORS((errors) => checkListenerShape(x as GatewayListener, 0, null, errors)));
}

/**
 * Every check validateWhole makes, against the stream's last accepted snapshot: a resource in the
 * same place as before was accepted with it; any other is checked on its own (remembered per
 * object). Cross-references are re-checked wherever either side changed: every endpoint set, route
 * and mirror when the clusters changed, every listener when the route configs changed, and every
 * resource that is new.
 */
function acceptsFrozenSnapshot(s: ProxySnapshot, prev: Accepted | undefined): Accepted | null {
  const v = validators();
  if (!v.frame(s) || !NO_ERRORS((errors) => checkSnapshotFrame(s, errors))) return null;
  const p = prev?.snapshot;
  for (const field of OBJECT_FIELDS) if (s[field] !== p?.[field] && !acceptedOnce(field, s[field], v[field])) return null;

  let clusterNames = prev?.clusterNames;
  const clustersChanged = !p || !sameItems(s.clusters, p.clusters);
  if (clustersChanged) {
    const names = new Set<string>();
    for (const c of s.clusters) {
      if (!acceptsCluster(c) || names.has(c.name)) return null;
      names.add(c.name);
    }
    clusterNames = names;
  }
  const knownCluster = clusterNames as ReadonlySet<string>;
  for (let i = 0; i < s.endpoints.length; i++) {
    const e = s.endpoints[i];
    if (!clustersChanged && e === p?.endpoints[i]) continue;
    if (!acceptsEndpoints(e) || !knownCluster.has(e.cluster)) return null;
  }

  let routeConfigNames = prev?.routeConfigNames;
  const routeConfigsChanged = !p || !sameItems(s.routeConfigs, p.routeConfigs);
  if (routeConfigsChanged || clustersChanged) {
    const names = new Set<string>();
    for (let i = 0; i < s.routeConfigs.length; i++) {
      const rc = s.routeConfigs[i];
      const before = p?.routeConfigs[i];
      if (names.has(rc.name)) return null;
      names.add(rc.name);
      if (rc === before && !clustersChanged) continue;
      if (!acceptedOnce('routeConfig', rc, v.routeConfig)) return null;
      for (let j = 0; j < rc.virtualHosts.length; j++) {
        const vh = rc.virtualHosts[j];
        if (!clustersChanged && before && vh === before.virtualHosts?.[j]) continue;
        if (!acceptsVirtualHost(vh)) return null;
        for (const name of namedClusters.get(vh) ?? []) if (!knownCluster.has(name) && !BUILTIN_CLUSTERS.has(name)) return null;
      }
    }
    routeConfigNames = names;
  }
  const knownRouteConfig = routeConfigNames as ReadonlySet<string>;
  for (let i = 0; i < s.listeners.length; i++) {
    const l = s.listeners[i];
    if (!routeConfigsChanged && l === p?.listeners[i]) continue;
    if (!acceptsListener(l) || !knownRouteConfig.has(l.routeConfig)) return null;
  }
  return { snapshot: s, clusterNames: knownCluster, routeConfigNames: knownRouteConfig };
}

// ---------------------------------------------------------------- regexes (RE2), as src/mesh checks them

function regexesCompile(r: Route): boolean {
  for (const m of r.match) if (!matchRegexesCompile(m)) return false;
  if (r.rewrite?.uriRegex && !compiles(r.rewrite.uriRegex.match)) return false;
  for (const o of r.cors?.allowOrigins ?? []) if (!matcherCompiles(o)) return false;
  return true;
}

function matchRegexesCompile(match: RouteMatch): boolean {
  for (const field of ['uri', 'scheme', 'method', 'authority'] as const) {
    const matcher = match[field];
    if (matcher && !matcherCompiles(matcher)) return false;
  }
  for (const field of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const matcher of Object.values(match[field] ?? {})) if (!matcherCompiles(matcher)) return false;
  }
  return true;
}

function matcherCompiles(matcher: StringMatcher): boolean {
  return !('regex' in matcher) || compiles(matcher.regex);
}

function compiles(pattern: string): boolean {
  try {
    RE2JS.compile(pattern);
    return true;
  } catch {
    return false;
  }
}
