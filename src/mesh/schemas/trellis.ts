/** trellis.dev/v1alpha1 Fleet and ClusterStatus (types in src/mesh/api/trellis.ts). */
import { bool, duration, list, obj, oneOfValues, str, strList, strMap } from './dsl.js';
import type { Schema } from './dsl.js';

const dnsLabel = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 };
const nonNegative = { type: 'number', minimum: 0 };

export const fleetSpec: Schema = obj(
  {
    clusters: list(obj({ name: dnsLabel, overlay: str, labels: strMap }, ['name']), { minItems: 1 }),
    stages: list(obj({ name: str, clusters: list(str, { minItems: 1 }) }, ['name', 'clusters']), { minItems: 1 }),
    rollout: obj({
      canarySteps: list({ type: 'number', exclusiveMinimum: 0, maximum: 100 }, { minItems: 1 }),
      analysis: obj({
        interval: duration,
        minSuccessRate: { type: 'number', minimum: 0, maximum: 100 },
        maxP99LatencyMs: nonNegative,
        minRequests: { type: 'integer', minimum: 0 },
        failureLimit: { type: 'integer', minimum: 1 },
        maxRegression: { type: 'number', minimum: 0, maximum: 100 },
      }),
      promotion: oneOfValues('manual', 'pull-request', 'auto'),
      rollback: oneOfValues('hold', 'revert-commit'),
    }),
    suspend: bool,
  },
  ['clusters', 'stages'],
);

export const clusterStatusSpec: Schema = obj({ cluster: str }, ['cluster']);

const condition = obj(
  {
    type: str,
    status: oneOfValues('True', 'False', 'Unknown'),
    reason: str,
    message: str,
    lastTransitionTime: str,
    observedGeneration: { type: 'integer' },
  },
  ['type', 'status'],
);

/**
 * ClusterStatus.status is written by the operator and grows with it: known fields are typed, new
 * ones are carried (additionalProperties: true is the one deliberate exception to closed objects).
 */
export const clusterStatusStatus: Schema = {
  type: 'object',
  properties: {
    observedCommit: str,
    desiredVersion: str,
    currentVersion: str,
    phase: oneOfValues('Progressing', 'Healthy', 'Degraded', 'RolledBack', 'Waiting', 'Paused', 'InvalidConfig'),
    errors: strList,
    verifiedVersions: strList,
    failedVersions: strList,
    conditions: list(condition),
  },
  additionalProperties: true,
};
