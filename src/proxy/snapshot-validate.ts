import { checkSnapshotShape, type SnapshotCheck } from './snapshot-check.js';

/**
 * The proxy's validation gate: the structural checks it needs to compile a snapshot. (The full JSON
 * schema of src/mesh/snapshot-schema.ts is applied here too once it lands.)
 */
export function validateProxySnapshot(value: unknown): SnapshotCheck {
  return checkSnapshotShape(value);
}
