import type { FleetSpec } from '../../mesh/api/index.js';

export interface GateDecision {
  open: boolean;
  /** Names the stage (and the clusters in it) the cluster waits for. */
  reason?: string;
}

export function stageIndexOf(fleet: FleetSpec, cluster: string): number {
  return fleet.stages.findIndex((s) => s.clusters.includes(cluster));
}

/**
 * A cluster may move to `version` only when every cluster of the previous stage has verified it
 * (run it healthy through every canary step). `verified` comes from the status branch, so each
 * cluster's operator instance sees the same gate.
 */
export function stageGate(fleet: FleetSpec, cluster: string, version: string, verified: (cluster: string) => readonly string[]): GateDecision {
  const index = stageIndexOf(fleet, cluster);
  if (index <= 0) return { open: true };
  const previous = fleet.stages[index - 1];
  const missing = previous.clusters.filter((c) => !verified(c).includes(version));
  if (missing.length === 0) return { open: true };
  return { open: false, reason: `waiting for stage "${previous.name}" to verify ${version} (not yet verified by ${missing.join(', ')})` };
}

/** The stage after the cluster's, if every cluster of the cluster's stage has verified `version`. */
export function nextStageReadyFor(fleet: FleetSpec, cluster: string, version: string, verified: (cluster: string) => readonly string[]) {
  const index = stageIndexOf(fleet, cluster);
  if (index < 0 || index + 1 >= fleet.stages.length) return undefined;
  const stage = fleet.stages[index];
  if (!stage.clusters.every((c) => verified(c).includes(version))) return undefined;
  return fleet.stages[index + 1];
}
