import { SNAPSHOT_FORMAT, type MeshSettings, type ProxyIdentity, type ProxySnapshot } from '../../mesh/snapshot.js';
import type { SnapshotInput } from '../types.js';
import { createHash, type Hash } from 'node:crypto';
import { CONTENT_HASH_LENGTH, canonicalJson, hashText } from '../hash.js';
import { compact } from './common.js';
import { buildClusterIndex, labelsKey, type ClusterIndex } from './cluster-index.js';
import { buildGatewayConfig } from './gateway.js';
import { buildInboundPolicy } from './inbound.js';
import { buildSidecarOutbound } from './outbound.js';
import { buildTelemetrySettings } from './telemetry.js';

function translateProxyIdentity(proxy: ProxyIdentity): ProxyIdentity {
  return compact({
    id: proxy.id,
    cluster: proxy.cluster,
    namespace: proxy.namespace,
    workload: proxy.workload,
    labels: { ...proxy.labels },
    service: proxy.service,
    serviceAccount: proxy.serviceAccount,
    mode: proxy.mode,
  });
}

function meshSettingsFor(index: ClusterIndex, outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' | undefined): MeshSettings {
  if (!outboundTrafficPolicy || outboundTrafficPolicy === index.mesh.outboundTrafficPolicy) return index.mesh;
  const key = `mesh|${outboundTrafficPolicy}`;
  let mesh = index.memo.get(key) as MeshSettings | undefined;
  if (!mesh) {
    mesh = Object.freeze({ ...index.mesh, outboundTrafficPolicy });
    index.memo.set(key, mesh);
  }
  return mesh;
}

/**
 * One proxy's snapshot from a prepared cluster index. Pure: the result depends only on the index
 * content and the proxy. Resources are shared (frozen) between snapshots of the same index; do
 * not mutate a snapshot, copy it.
 */
export function buildProxySnapshotFromIndex(index: ClusterIndex, proxy: ProxyIdentity): ProxySnapshot {
  let body: Omit<ProxySnapshot, 'version'>;
  const identity = translateProxyIdentity(proxy);
  const common = {
    format: SNAPSHOT_FORMAT as typeof SNAPSHOT_FORMAT,
    meshVersion: index.meshVersion,
    proxy: identity,
  };
  if (proxy.mode === 'gateway') {
    const gateway = buildGatewayConfig(index, proxy);
    body = {
      ...common,
      mesh: index.mesh,
      routeConfigs: gateway.routeConfigs,
      clusters: gateway.clusters,
      endpoints: gateway.endpoints,
      listeners: gateway.listeners,
      inbound: perWorkload(index, 'inbound', proxy, buildInboundPolicy),
      telemetry: perWorkload(index, 'telemetry', proxy, buildTelemetrySettings),
    };
  } else {
    const outbound = buildSidecarOutbound(index, proxy);
    body = {
      ...common,
      mesh: meshSettingsFor(index, outbound.outboundTrafficPolicy),
      routeConfigs: sharedList(index, 'routeConfigs', outbound.routeConfig),
      clusters: outbound.clusters,
      endpoints: outbound.endpoints,
      listeners: EMPTY_LISTENERS,
      inbound: perWorkload(index, 'inbound', proxy, buildInboundPolicy),
      telemetry: perWorkload(index, 'telemetry', proxy, buildTelemetrySettings),
    };
  }
  const version = snapshotVersion(index, body);
  return {
    format: body.format,
    version,
    meshVersion: body.meshVersion,
    proxy: body.proxy,
    mesh: body.mesh,
    routeConfigs: body.routeConfigs,
    clusters: body.clusters,
    endpoints: body.endpoints,
    listeners: body.listeners,
    inbound: body.inbound,
    telemetry: body.telemetry,
  };
}

/** Inbound policy and telemetry depend only on namespace and labels: proxies that share both share the objects. */
function perWorkload<T>(index: ClusterIndex, kind: string, proxy: ProxyIdentity, build: (index: ClusterIndex, proxy: ProxyIdentity) => T): T {
  const key = `${kind}|${proxy.namespace}|${labelsKey(proxy.labels)}`;
  let value = index.memo.get(key) as T | undefined;
  if (value === undefined) {
    value = build(index, proxy);
    index.memo.set(key, value);
  }
  return value;
}

/**
 * sha256 of the canonical JSON of the snapshot without `version` (= contentHash(body)), computed
 * without building that text: the hash state after the shared clusters and endpoints is kept per
 * pair and copied, and every other member is fed from its memoised canonical text. The member
 * order is canonical (sorted) key order; the tests check the result equals contentHash.
 */
function snapshotVersion(index: ClusterIndex, body: Omit<ProxySnapshot, 'version'>): string {
  const memo = index.cache.json;
  const prefixes = (index.memo.get('version-prefix') as WeakMap<object, WeakMap<object, Hash>> | undefined) ?? new WeakMap();
  index.memo.set('version-prefix', prefixes);
  let byEndpoints = prefixes.get(body.clusters);
  if (!byEndpoints) {
    byEndpoints = new WeakMap();
    prefixes.set(body.clusters, byEndpoints);
  }
  let prefix = byEndpoints.get(body.endpoints);
  if (!prefix) {
    prefix = createHash('sha256')
      .update(`{"clusters":`)
      .update(canonicalJson(body.clusters, memo))
      .update(`,"endpoints":`)
      .update(canonicalJson(body.endpoints, memo))
      .update(`,"format":${JSON.stringify(body.format)}`);
    byEndpoints.set(body.endpoints, prefix);
  }
  const hash = prefix.copy();
  hash.update(`,"inbound":${canonicalJson(body.inbound, memo)}`);
  hash.update(`,"listeners":${canonicalJson(body.listeners, memo)}`);
  hash.update(`,"mesh":${canonicalJson(body.mesh, memo)}`);
  hash.update(`,"meshVersion":${JSON.stringify(body.meshVersion)}`);
  hash.update(`,"proxy":${canonicalJson(body.proxy)}`);
  hash.update(`,"routeConfigs":`);
  hash.update(canonicalJson(body.routeConfigs, memo));
  hash.update(`,"telemetry":${canonicalJson(body.telemetry, memo)}}`);
  return hash.digest('hex').slice(0, CONTENT_HASH_LENGTH);
}

const EMPTY_LISTENERS: ProxySnapshot['listeners'] = Object.freeze([]) as unknown as ProxySnapshot['listeners'];

/** A one-element list that keeps its identity while its element does (so its canonical JSON stays memoised). */
function sharedList<T extends object>(index: ClusterIndex, kind: string, item: T): T[] {
  const lists = (index.memo.get(`list|${kind}`) as WeakMap<T, T[]> | undefined) ?? new WeakMap<T, T[]>();
  index.memo.set(`list|${kind}`, lists);
  let list = lists.get(item);
  if (!list) {
    list = Object.freeze([item]) as unknown as T[];
    lists.set(item, list);
  }
  return list;
}

/**
 * Renders one proxy's snapshot from the cluster's objects, merged meshConfig, the endpoint
 * registry and the proxy's identity. Pure (no clock, environment, filesystem or globals).
 * `version` is the content hash of the snapshot without `version`.
 */
export function buildProxySnapshot(input: SnapshotInput): ProxySnapshot {
  return buildProxySnapshotFromIndex(buildClusterIndex(input.cluster, input.endpoints), input.proxy);
}

/**
 * A hash per named resource, for delta pushes: `routeConfig/<name>`, `cluster/<name>`,
 * `endpoints/<cluster>`, `listener/<name>`, plus `inbound`, `mesh` and `telemetry`.
 * `memo` (e.g. the index's cache.json) makes repeated calls on shared resources cheap.
 */
export function resourceHashes(snapshot: ProxySnapshot, memo?: WeakMap<object, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const hash = (value: unknown): string => hashText(canonicalJson(value, memo));
  for (const rc of snapshot.routeConfigs) out[`routeConfig/${rc.name}`] = hash(rc);
  for (const c of snapshot.clusters) out[`cluster/${c.name}`] = hash(c);
  for (const e of snapshot.endpoints) out[`endpoints/${e.cluster}`] = hash(e);
  for (const l of snapshot.listeners) out[`listener/${l.name}`] = hash(l);
  out.inbound = hash(snapshot.inbound);
  out.mesh = hash(snapshot.mesh);
  out.telemetry = hash(snapshot.telemetry);
  return out;
}
