/** trellis.dev/v1alpha1 Fleet: the root `trellis.yaml` of a config repository (DESIGN.md §4). */
export interface FleetSpec {
  clusters: FleetCluster[];
  stages: FleetStage[];
  rollout?: RolloutPolicy;
  suspend?: boolean;
}
export interface FleetCluster {
  name: string;
  /** Overlay directory, default `kustomize/overlays/<name>`. */
  overlay?: string;
  labels?: Record<string, string>;
}
export interface FleetStage {
  name: string;
  clusters: string[];
}
export interface RolloutPolicy {
  /** Percent of a cluster's proxies per canary step, ascending, ending at 100. */
  canarySteps?: number[];
  analysis?: AnalysisPolicy;
  promotion?: 'manual' | 'pull-request' | 'auto';
  rollback?: 'hold' | 'revert-commit';
}
export interface AnalysisPolicy {
  interval?: string;
  minSuccessRate?: number;
  maxP99LatencyMs?: number;
  minRequests?: number;
  failureLimit?: number;
  /** Largest allowed drop of success rate (percentage points) versus proxies still on the old version. */
  maxRegression?: number;
}

export type ClusterPhase = 'Progressing' | 'Healthy' | 'Degraded' | 'RolledBack' | 'Waiting' | 'Paused' | 'InvalidConfig';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** trellis.dev/v1alpha1 ClusterStatus (DESIGN.md §5). */
export interface ClusterStatusSpec {
  cluster: string;
}
export interface ClusterStatusStatus {
  observedCommit?: string;
  desiredVersion?: string;
  currentVersion?: string;
  phase?: ClusterPhase;
  canary?: { step: number; weight: number; version?: string };
  lastAnalysis?: { successRate?: number; p99LatencyMs?: number; requests?: number; passed?: boolean; at?: string };
  proxies?: { total: number; onDesired: number; drifted: number; disconnected: number };
  drift?: Array<{ proxy: string; state: string; detail?: string }>;
  errors?: string[];
  /** Versions this cluster has run healthy through every canary step: the stage gate reads them. */
  verifiedVersions?: string[];
  /** Versions rolled back in this cluster, with the analysis that decided it. */
  failedVersions?: string[];
  conditions?: Condition[];
}
