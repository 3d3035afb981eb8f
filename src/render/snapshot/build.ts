import { SNAPSHOT_FORMAT, type MeshSettings, type ProxyIdentity, type ProxySnapshot } from '../../mesh/snapshot.js';
import type { SnapshotInput } from '../types.js';
import { canonicalJson, contentHash, hashText } from '../hash.js';
import { compact } from './common.js';
import { buildClusterIndex, type ClusterIndex } from './cluster-index.js';
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
      inbound: buildInboundPolicy(index, proxy),
      telemetry: buildTelemetrySettings(index, proxy),
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
      inbound: buildInboundPolicy(index, proxy),
      telemetry: buildTelemetrySettings(index, proxy),
    };
  }
  const version = contentHash(body, index.cache.json);
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
