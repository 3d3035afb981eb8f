export { buildKustomization, buildKustomizationDetailed, type KustomizeBuildResult } from './build.js';
export { RenderError, type RenderErrorCode } from './errors.js';
export { SUPPORTED_FIELDS as SUPPORTED_KUSTOMIZATION_FIELDS } from './kustomization-file.js';
export { toKubernetesDocument } from './resource.js';
