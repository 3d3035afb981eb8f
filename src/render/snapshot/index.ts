/**
 * Proxy snapshot rendering (issue 2, "Rendering"): cluster objects + merged meshConfig + endpoint
 * registry + proxy identity → ProxySnapshot (src/mesh/snapshot.ts). Pure functions only.
 *
 * How it stays cheap:
 * - buildClusterIndex translates each VirtualService once (rules, destinations → cluster names,
 *   retries/faults/mirrors), indexes DestinationRules by host and policies by namespace, and merges
 *   services from the endpoint registry, Kubernetes Service objects and ServiceEntries.
 * - Passing the previous index carries its caches forward: objects are recognised by identity, else
 *   by a content hash, so a one-object change re-translates that object only; translated routes,
 *   clusters and endpoint assignments keep their identity (and their memoised canonical JSON).
 * - buildProxySnapshotFromIndex memoises per proxy class: the outbound view per (namespace, Sidecar,
 *   labels only when a rule selects by labels), virtual hosts per (host, VirtualServices, short-name
 *   visibility), cluster lists per visible set, inbound/telemetry per (namespace, labels).
 * - `version` is sha256 over the snapshot's canonical JSON, fed from memoised member texts with the
 *   hash state after the shared clusters/endpoints kept and copied, so it is never re-serialised whole.
 *
 * Shared resources are frozen (shallowly) and shared between snapshots of one index: never mutate a
 * snapshot; copy it.
 */
export { buildProxySnapshot, buildProxySnapshotFromIndex, resourceHashes } from './build.js';
export { buildClusterIndex, type ClusterIndex, type RenderCache } from './cluster-index.js';
export { buildMeshSettings, translateRetry, translateMeshDefaultRetry, ISTIO_DEFAULT_RETRY, DISABLED_RETRY } from './mesh-settings.js';
