import type { MeshObject, SourceRef } from '../../mesh/object.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A resource id as kustomize sees it. */
export interface ResId {
  group: string;
  version: string;
  kind: string;
  name: string;
  namespace: string;
}

/**
 * A resource during a build: the plain document (exactly what `kustomize build` prints) plus where it came from.
 * `previousIds` holds the name/namespace it had before each rename, oldest first (kustomize's PrevIds).
 */
export interface KResource {
  doc: JsonObject;
  source?: SourceRef;
  fieldSources: Record<string, SourceRef>;
  previousIds: Array<{ name: string; namespace: string }>;
}


/** Kinds kustomize treats as cluster-scoped: no namespace is set on them. */
const CLUSTER_SCOPED = new Set([
  'APIService', 'CSIDriver', 'CSINode', 'CertificateSigningRequest', 'ClusterRole', 'ClusterRoleBinding',
  'ComponentStatus', 'CustomResourceDefinition', 'IngressClass', 'MutatingWebhookConfiguration', 'Namespace',
  'Node', 'PersistentVolume', 'PodSecurityPolicy', 'PriorityClass', 'RuntimeClass', 'StorageClass',
  'ValidatingWebhookConfiguration', 'VolumeAttachment', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
]);

export function isClusterScoped(kind: string): boolean {
  return CLUSTER_SCOPED.has(kind);
}

/** Copies a loaded object into a build resource (the object itself is left untouched). */
export function fromMeshObject(obj: MeshObject): KResource {
  const doc: JsonObject = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: clone(obj.metadata as unknown as Json) };
  // The loader defaults a missing spec to {}; print it only when the file had one, as kustomize does.
  const hadSpec = obj.fieldSources?.spec !== undefined || !isEmptyObject(obj.spec);
  if (hadSpec) doc.spec = clone(obj.spec as Json);
  if (obj.status !== undefined) doc.status = clone(obj.status as Json);
  for (const [key, value] of Object.entries(obj.extraFields ?? {})) doc[key] = clone(value as Json);
  return { doc, source: obj.source, fieldSources: { ...(obj.fieldSources ?? {}) }, previousIds: [] };
}

export function toMeshObject(res: KResource): MeshObject {
  const { apiVersion, kind, metadata, spec, status, ...extra } = res.doc;
  const obj: MeshObject = {
    apiVersion: apiVersion as string,
    kind: kind as string,
    metadata: metadata as unknown as MeshObject['metadata'],
    spec: spec === undefined ? {} : spec,
  };
  if (status !== undefined) obj.status = status;
  if (Object.keys(extra).length > 0) obj.extraFields = extra;
  if (res.source) obj.source = res.source;
  obj.fieldSources = res.fieldSources;
  return obj;
}

export function metadataOf(doc: JsonObject): JsonObject {
  const meta = doc.metadata;
  if (meta && typeof meta === 'object' && !Array.isArray(meta)) return meta;
  const created: JsonObject = {};
  doc.metadata = created;
  return created;
}

export function resId(res: KResource): ResId {
  const doc = res.doc;
  const apiVersion = String(doc.apiVersion ?? '');
  const slash = apiVersion.lastIndexOf('/');
  const meta = metadataOf(doc);
  return {
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    version: slash < 0 ? apiVersion : apiVersion.slice(slash + 1),
    kind: String(doc.kind ?? ''),
    name: String(meta.name ?? ''),
    namespace: typeof meta.namespace === 'string' ? meta.namespace : '',
  };
}

/** kustomize's EffectiveNamespace: cluster-scoped kinds have none; an unset namespace means `default`. */
export function effectiveNamespace(kind: string, namespace: string): string {
  if (isClusterScoped(kind)) return '';
  return namespace === '' ? 'default' : namespace;
}

/** Every name/namespace the resource has had, oldest first, ending with the current one. */
export function allIds(res: KResource): Array<{ name: string; namespace: string }> {
  const cur = resId(res);
  return [...res.previousIds, { name: cur.name, namespace: cur.namespace }];
}

/** The original id (before any rename), as kustomize's OrgId. */
export function originalId(res: KResource): { name: string; namespace: string } {
  return allIds(res)[0];
}

/** Records the current name/namespace before a transformer changes it. */
export function rememberId(res: KResource): void {
  const cur = resId(res);
  res.previousIds.push({ name: cur.name, namespace: cur.namespace });
}

export function describeId(id: ResId): string {
  const gv = id.group ? `${id.version}.${id.group}` : id.version;
  return `${id.kind}.${gv}/${id.name}.${id.namespace || '[noNs]'}`;
}

export function objectName(res: KResource): string {
  const id = resId(res);
  return id.namespace ? `${id.namespace}/${id.name}` : id.name;
}

/** A deep copy of plain JSON data (faster than structuredClone for the small trees of config objects). */
export function clone<T extends Json>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => clone(v)) as T;
  const out: JsonObject = {};
  for (const key of Object.keys(value)) out[key] = clone((value as JsonObject)[key]);
  return out as T;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isEmptyObject(value: unknown): boolean {
  return isObject(value) && Object.keys(value).length === 0;
}


/** A built object as the plain Kubernetes document kustomize prints (no positions; `spec` only if it has one). */
export function toKubernetesDocument(obj: MeshObject): Record<string, unknown> {
  return fromMeshObject(obj).doc;
}
