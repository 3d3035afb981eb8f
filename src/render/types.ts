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

/**
 * A workload instance known to the control plane: registered by its proxy over discovery, or
 * declared by a ServiceEntry / WorkloadEntry. Endpoints of a service are all such entries.
 */
export interface WorkloadEndpoint {
  /** Short service name (`reviews`) or, for ServiceEntry endpoints, the entry's host. */
  service: string;
  namespace: string;
  address: string;
  port: number;
  labels: Record<string, string>;
  serviceAccount?: string;
  workload?: string;
  /** `istio` when a Trellis sidecar fronts it (accepts mTLS). */
  tlsMode: 'istio' | 'disabled';
  /** Proxy id that registered it, when registered by discovery. */
  proxyId?: string;
}

/** Everything buildProxySnapshot needs; it is a pure function of this input (STYLE.md §6). */
export interface SnapshotInput {
  cluster: ClusterRender;
  endpoints: WorkloadEndpoint[];
  proxy: import('../mesh/snapshot.js').ProxyIdentity;
}
