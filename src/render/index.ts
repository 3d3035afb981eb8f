// Re-exports only: the public surface of src/render.
export * from './types.js';
export { DiskFileSystem, MemoryFileSystem, MAX_REPO_FILE_BYTES, joinRepoPath, normalizeRepoPath } from './fs.js';
export {
  buildKustomization, buildKustomizationDetailed, RenderError, SUPPORTED_KUSTOMIZATION_FIELDS, toKubernetesDocument,
  type KustomizeBuildResult, type RenderErrorCode,
} from './kustomize/index.js';
export { mergeIstioOperator, resolveIstioOperator, type MergedIstioOperator } from './istio-operator.js';
export {
  deepMerge, getProfile, isProfileName, listProfiles, MESH_CONFIG_DEFAULTS, PROFILE_NAMES, profileSpec,
  type Profile, type ProfileName,
} from './profiles/index.js';
export { FLEET_FILE, loadRepository, loadRepositoryFromDir, OVERLAYS_DIR, VERSIONS_DIR } from './repository.js';
