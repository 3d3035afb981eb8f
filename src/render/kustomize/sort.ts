import { resId, type KResource } from './resource.js';

/** kustomize's legacy output order (the default of `kustomize build`): these kinds first, in this order… */
const ORDER_FIRST = [
  'Namespace', 'ResourceQuota', 'StorageClass', 'CustomResourceDefinition', 'ServiceAccount', 'PodSecurityPolicy',
  'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Secret', 'Endpoints', 'Service',
  'LimitRange', 'PriorityClass', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'StatefulSet',
  'CronJob', 'PodDisruptionBudget',
];
/** …these last, and everything else in between, by group_version_kind, then namespace, then name. */
const ORDER_LAST = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'];

const TYPE_ORDER = new Map<string, number>([
  ...ORDER_FIRST.map((kind, i): [string, number] => [kind, i - ORDER_FIRST.length]),
  ...ORDER_LAST.map((kind, i): [string, number] => [kind, i + 1]),
]);

// kustomize's placeholders for empty id fields; '~' sorts after every letter.
const gvkString = (group: string, version: string, kind: string): string => `${group || '~G'}_${version || '~V'}_${kind || '~K'}`;

/** Sorts resources into kustomize's legacy order (stable). */
export function sortLegacy(resources: KResource[]): KResource[] {
  const keyed = resources.map((res, index) => {
    const id = resId(res);
    const gvk = gvkString(id.group, id.version, id.kind);
    return { res, index, order: TYPE_ORDER.get(id.kind) ?? 0, gvk, full: `${gvk}|${id.namespace || '~X'}|${id.name || '~N'}` };
  });
  keyed.sort((a, b) => {
    if (a.gvk !== b.gvk) {
      if (a.order !== b.order) return a.order - b.order;
      return a.gvk < b.gvk ? -1 : 1;
    }
    if (a.full !== b.full) return a.full < b.full ? -1 : 1;
    return a.index - b.index;
  });
  return keyed.map((k) => k.res);
}
