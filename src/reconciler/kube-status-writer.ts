import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { ClusterStatusStatus } from '../mesh/api/trellis.js';
import { TransientError } from './errors.js';
import { kubeErrorCode, kubeErrorMessage } from './kube-client.js';
import { clusterStatusResource, type ClusterStatusResource } from './status-format.js';
import type { StatusBatch, StatusSink } from './status-publisher.js';

export const CLUSTER_STATUS_GROUP = 'trellis.dev';
export const CLUSTER_STATUS_VERSION = 'v1alpha1';
export const CLUSTER_STATUS_PLURAL = 'clusterstatuses';
export const DEFAULT_STATUS_NAMESPACE = 'trellis-system';
/** Read-modify-write attempts when the resource changes under us (409 Conflict). */
export const MAX_CONFLICT_RETRIES = 5;

/**
 * Writes ClusterStatus custom resources: creates the object when missing, then patches its
 * status subresource with a JSON merge patch (RFC 7386) that carries the read resourceVersion as
 * a precondition; a 409 (someone else wrote in between, or a concurrent create) re-reads and
 * retries.
 */
export class KubeStatusWriter implements StatusSink {
  readonly name = 'kubernetes';
  private readonly api: CustomObjectsApi;
  readonly namespace: string;

  constructor(kc: KubeConfig, opts: { namespace?: string } = {}) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.namespace = opts.namespace ?? DEFAULT_STATUS_NAMESPACE;
  }

  async write(batch: StatusBatch): Promise<void> {
    for (const { cluster, status } of batch.changed) await this.upsert(cluster, status);
    for (const cluster of batch.removed) await this.remove(cluster);
  }

  /** Deletes `ClusterStatus/<cluster>` (a cluster removed from the fleet); absent is fine. */
  async remove(cluster: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({ group: CLUSTER_STATUS_GROUP, version: CLUSTER_STATUS_VERSION, namespace: this.namespace, plural: CLUSTER_STATUS_PLURAL, name: cluster });
    } catch (err) {
      if (kubeErrorCode(err) !== 404) throw new TransientError('StatusWriteFailed', `delete ClusterStatus ${this.namespace}/${cluster}: ${kubeErrorMessage(err)}`);
    }
  }

  /** Creates or updates `ClusterStatus/<cluster>` and sets its status; returns the stored object. */
  async upsert(cluster: string, status: ClusterStatusStatus): Promise<ClusterStatusResource> {
    const base = { group: CLUSTER_STATUS_GROUP, version: CLUSTER_STATUS_VERSION, namespace: this.namespace, plural: CLUSTER_STATUS_PLURAL };
    let lastError: unknown;
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      try {
        let current: ClusterStatusResource & { metadata: { resourceVersion?: string } };
        try {
          current = await this.api.getNamespacedCustomObject({ ...base, name: cluster });
        } catch (err) {
          if (kubeErrorCode(err) !== 404) throw err;
          const { status: _ignored, ...body } = clusterStatusResource(cluster, status, this.namespace);
          current = await this.api.createNamespacedCustomObject({ ...base, body });
        }
        const body = { metadata: { resourceVersion: current.metadata.resourceVersion }, status: mergePatch((current as { status?: unknown }).status, status) };
        return (await this.api.patchNamespacedCustomObjectStatus(
          { ...base, name: cluster, body },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        )) as ClusterStatusResource;
      } catch (err) {
        lastError = err;
        if (kubeErrorCode(err) !== 409) break;
      }
    }
    throw new TransientError('StatusWriteFailed', `ClusterStatus ${this.namespace}/${cluster}: ${kubeErrorMessage(lastError)}`);
  }
}

/** The RFC 7386 merge patch turning `from` into `to` (removed keys become null; arrays are replaced). */
export function mergePatch(from: unknown, to: unknown): unknown {
  if (!isPlainObject(from) || !isPlainObject(to)) return to === undefined ? null : to;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(from)) if (!(key in to) || to[key] === undefined) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    if (value === undefined) continue;
    if (isPlainObject(value) && isPlainObject(from[key])) patch[key] = mergePatch(from[key], value);
    else if (JSON.stringify(value) !== JSON.stringify(from[key])) patch[key] = value;
  }
  return patch;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
