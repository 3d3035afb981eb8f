import { validateSnapshot } from '../mesh/snapshot-schema.js';
import { checkSnapshotShape, type SnapshotCheck } from './snapshot-check.js';

/**
 * The proxy's validation gate: the snapshot JSON schema and reference checks of src/mesh, then the
 * structural checks the proxy itself relies on when it compiles a snapshot.
 */
export function validateProxySnapshot(value: unknown): SnapshotCheck {
  const schema = validateSnapshot(value);
  if (!schema.ok) return schema;
  return checkSnapshotShape(value);
}
