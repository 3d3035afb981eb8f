export { buildProxySnapshot, buildProxySnapshotFromIndex, resourceHashes } from './build.js';
export { buildClusterIndex, type ClusterIndex, type RenderCache } from './cluster-index.js';
export { buildMeshSettings, translateRetry, ISTIO_DEFAULT_RETRY } from './mesh-settings.js';
