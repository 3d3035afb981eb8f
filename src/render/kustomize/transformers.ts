import { childPath } from '../../mesh/field-path.js';
import type { SourceRef } from '../../mesh/object.js';
import { isObject, metadataOf, rememberId, resId, isClusterScoped, type JsonObject, type KResource } from './resource.js';

/** Where a transformer writes: kustomize's FieldSpec (`path` segments; `x[]` walks every element of list x). */
interface FieldSpec {
  group?: string;
  version?: string;
  kind?: string;
  path: string[];
  create: boolean;
}

const spec = (kind: string, path: string, create: boolean, group?: string, version?: string): FieldSpec => ({
  kind,
  path: path.split('/'),
  create,
  group,
  version,
});

const METADATA_LABELS: FieldSpec = { path: ['metadata', 'labels'], create: true };
const METADATA_ANNOTATIONS: FieldSpec = { path: ['metadata', 'annotations'], create: true };

/** Pod-template labels (kustomize's templateLabels field specs). */
const TEMPLATE_LABELS: FieldSpec[] = [
  spec('ReplicationController', 'spec/template/metadata/labels', true, '', 'v1'),
  spec('Deployment', 'spec/template/metadata/labels', true),
  spec('ReplicaSet', 'spec/template/metadata/labels', true),
  spec('DaemonSet', 'spec/template/metadata/labels', true),
  spec('StatefulSet', 'spec/template/metadata/labels', true, 'apps'),
  spec('StatefulSet', 'spec/volumeClaimTemplates[]/metadata/labels', true, 'apps'),
  spec('Job', 'spec/template/metadata/labels', true, 'batch'),
  spec('CronJob', 'spec/jobTemplate/metadata/labels', true, 'batch'),
  spec('CronJob', 'spec/jobTemplate/spec/template/metadata/labels', true, 'batch'),
];

/** Selector fields kustomize's commonLabels (and labels with includeSelectors) also writes. */
const SELECTOR_LABELS: FieldSpec[] = [
  spec('Service', 'spec/selector', true, '', 'v1'),
  spec('ReplicationController', 'spec/selector', true, '', 'v1'),
  spec('Deployment', 'spec/selector/matchLabels', true),
  spec('ReplicaSet', 'spec/selector/matchLabels', true),
  spec('DaemonSet', 'spec/selector/matchLabels', true),
  spec('StatefulSet', 'spec/selector/matchLabels', true, 'apps'),
  spec('Job', 'spec/selector/matchLabels', false, 'batch'),
  spec('CronJob', 'spec/jobTemplate/spec/selector/matchLabels', false, 'batch'),
  spec('PodDisruptionBudget', 'spec/selector/matchLabels', false, 'policy'),
  spec('NetworkPolicy', 'spec/podSelector/matchLabels', false, 'networking.k8s.io'),
];

const TEMPLATE_ANNOTATIONS: FieldSpec[] = [
  spec('ReplicationController', 'spec/template/metadata/annotations', true, '', 'v1'),
  spec('Deployment', 'spec/template/metadata/annotations', true),
  spec('ReplicaSet', 'spec/template/metadata/annotations', true),
  spec('DaemonSet', 'spec/template/metadata/annotations', true),
  spec('StatefulSet', 'spec/template/metadata/annotations', true, 'apps'),
  spec('StatefulSet', 'spec/volumeClaimTemplates[]/metadata/annotations', true, 'apps'),
  spec('Job', 'spec/template/metadata/annotations', true, 'batch'),
  spec('CronJob', 'spec/jobTemplate/metadata/annotations', true, 'batch'),
  spec('CronJob', 'spec/jobTemplate/spec/template/metadata/annotations', true, 'batch'),
];

export type LabelScope = { selectors: boolean; templates: boolean };

export function labelFieldSpecs(scope: LabelScope): FieldSpec[] {
  const specs = [METADATA_LABELS];
  if (scope.selectors) specs.push(...TEMPLATE_LABELS, ...SELECTOR_LABELS);
  else if (scope.templates) specs.push(...TEMPLATE_LABELS);
  return specs;
}

export const ANNOTATION_FIELD_SPECS: FieldSpec[] = [METADATA_ANNOTATIONS, ...TEMPLATE_ANNOTATIONS];

/** Sets `pairs` in every map the field specs name (the LabelTransformer / AnnotationsTransformer). */
export function applyMapTransformer(resources: KResource[], pairs: Record<string, string>, specs: FieldSpec[], origin: SourceRef): void {
  for (const res of resources) {
    const id = resId(res);
    for (const fs of specs) {
      if (fs.kind !== undefined && fs.kind !== id.kind) continue;
      if (fs.group !== undefined && fs.group !== id.group) continue;
      if (fs.version !== undefined && fs.version !== id.version) continue;
      walk(res, res.doc, fs.path, fs.create, '', pairs, origin);
    }
  }
}

function walk(res: KResource, node: JsonObject, path: string[], create: boolean, at: string, pairs: Record<string, string>, origin: SourceRef): void {
  const [head, ...rest] = path;
  if (head.endsWith('[]')) {
    const key = head.slice(0, -2);
    const list = node[key];
    if (!Array.isArray(list)) return;
    list.forEach((el, i) => {
      if (isObject(el)) walk(res, el, rest, create, childPath(childPath(at, key), i), pairs, origin);
    });
    return;
  }
  const here = childPath(at, head);
  let child = node[head];
  if (!isObject(child)) {
    if (!create || (child !== undefined && child !== null)) return;
    child = {};
    node[head] = child;
  }
  if (rest.length > 0) {
    walk(res, child, rest, create, here, pairs, origin);
    return;
  }
  for (const [key, value] of Object.entries(pairs)) {
    child[key] = value;
    res.fieldSources[childPath(here, key)] = origin;
  }
}

/** kustomize's NamespaceTransformer: namespaced objects move to `namespace`; a Namespace object is renamed to it. */
export function applyNamespace(resources: KResource[], namespace: string): void {
  for (const res of resources) {
    const id = resId(res);
    const meta = metadataOf(res.doc);
    if (id.kind === 'Namespace') {
      if (id.name !== namespace) {
        rememberId(res);
        meta.name = namespace;
      }
      continue;
    }
    if (isClusterScoped(id.kind)) continue;
    if (id.namespace !== namespace) {
      rememberId(res);
      meta.namespace = namespace;
    }
  }
}

/** Kinds kustomize's prefix/suffix transformers leave alone. */
const NO_PREFIX = new Set(['CustomResourceDefinition', 'APIService', 'Namespace']);

export function applyNameAffixes(resources: KResource[], prefix: string, suffix: string): void {
  for (const res of resources) {
    const id = resId(res);
    if (NO_PREFIX.has(id.kind)) continue;
    rememberId(res);
    metadataOf(res.doc).name = `${prefix}${id.name}${suffix}`;
  }
}
