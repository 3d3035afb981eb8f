import type { Diagnostic, MeshObject } from '../mesh/object.js';
import type { FleetSpec, IstioOperatorSpec, MeshConfig } from '../mesh/api/index.js';

/**
 * A read-only view of a checkout: paths are repository-relative with `/` separators.
 * Implementations refuse paths that escape the root (`..`, absolute, symlinks pointing outside).
 */
export interface RepoFileSystem {
  readFile(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
  isDirectory(path: string): Promise<boolean>;
  listDir(path: string): Promise<string[]>;
}

/** One cluster after `kustomize build` of its overlay, validation and profile merge. */
export interface ClusterRender {
  cluster: string;
  overlay: string;
  /** The `versions/<v>` folder name the overlay references (== IstioOperator spec.tag). */
  version: string;
  istioOperator: MeshObject<IstioOperatorSpec>;
  /** meshConfig after merging the IstioOperator onto its profile, defaults filled. */
  meshConfig: MeshConfig;
  /** Mesh resources (every in-scope kind except IstioOperator), in kustomize output order. */
  objects: MeshObject[];
}

/** The whole repository at one commit: validated and rendered, or refused with every error. */
export interface RepositoryRender {
  fleet: MeshObject<FleetSpec>;
  clusters: ClusterRender[];
  errors: Diagnostic[];
  warnings: Diagnostic[];
}
