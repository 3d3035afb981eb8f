import type { MeshObject } from '../../mesh/object.js';
import { parseDuration } from '../../mesh/duration.js';

/** Kubernetes DNS suffix of in-cluster service names. */
export const DOMAIN_SUFFIX = 'cluster.local';
export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** Port a route targets when neither the destination nor the service names one. */
export const FALLBACK_SERVICE_PORT = 80;
export const MAX_UINT32 = 4_294_967_295;

export function namespaceOf(obj: MeshObject): string {
  return obj.metadata.namespace || DEFAULT_NAMESPACE;
}

/** `<namespace>/<name>`, the key Trellis uses for namespaced objects everywhere. */
export function objectKey(obj: MeshObject): string {
  return `${namespaceOf(obj)}/${obj.metadata.name}`;
}

/**
 * Istio's short-name resolution: a name without a dot is a service in `namespace`
 * (`reviews` ⇒ `reviews.<ns>.svc.cluster.local`); anything with a dot, and `*`, is taken as written.
 */
export function resolveHost(host: string, namespace: string): string {
  if (host === '*' || host.includes('.')) return host;
  return `${host}.${namespace}.svc.${DOMAIN_SUFFIX}`;
}

/** A selector with no labels selects everything (Istio's empty-selector semantics). */
export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const key of Object.keys(selector)) {
    if (labels[key] !== selector[key]) return false;
  }
  return true;
}

type Selector = { matchLabels?: Record<string, string>; labels?: Record<string, string> };

/** A selector's labels: `labels` (Sidecar, ServiceEntry: Istio's networking WorkloadSelector) or `matchLabels` (policies, DestinationRule). */
export function selectorLabels(selector: Selector | undefined): Record<string, string> | undefined {
  return selector?.labels ?? selector?.matchLabels;
}

export function hasLabels(selector: Selector | undefined): boolean {
  const labels = selectorLabels(selector);
  return !!labels && Object.keys(labels).length > 0;
}

/** `*.example.com` matches `a.example.com` and `a.b.example.com`; `*` matches everything. */
export function hostMatchesPattern(host: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return host === pattern;
}

/** Whether two host patterns (either may be a wildcard) overlap; returns the more specific one, or undefined. */
export function intersectHosts(a: string, b: string): string | undefined {
  if (a === b) return a;
  if (hostMatchesPattern(a, b)) return a;
  if (hostMatchesPattern(b, a)) return b;
  if (a.startsWith('*') && b.startsWith('*')) {
    // two wildcards: the longer suffix is the narrower one
    return a.length >= b.length ? (a.endsWith(b.slice(1)) ? a : undefined) : b.endsWith(a.slice(1)) ? b : undefined;
  }
  return undefined;
}

/**
 * Istio `exportTo`: absent or containing `*` ⇒ every namespace; `.` ⇒ the owner's namespace;
 * `~` ⇒ none; other entries are namespace names.
 */
export function exportedTo(exportTo: string[] | undefined, ownerNamespace: string, viewerNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  for (const entry of exportTo) {
    if (entry === '*') return true;
    if (entry === '.' && ownerNamespace === viewerNamespace) return true;
    if (entry === viewerNamespace) return true;
  }
  return false;
}

/** Durations were validated before rendering; an unparsable one renders as absent rather than crashing a push. */
export function durationMs(value: string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    return parseDuration(String(value));
  } catch {
    return undefined;
  }
}

export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(byString);
}

/**
 * Freezes a rendered resource shallowly: resources are shared between snapshots and their canonical
 * JSON is memoised by identity, so they must never change. Deep freezing every resource cost ~15 %
 * of a render; the shallow freeze still stops the likeliest mistake (reassigning a field).
 */
export function freezeShared<T>(value: T): T {
  return Object.freeze(value);
}

/** Deep-freezes a value that is built once per index (mesh settings). */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value as Record<string, unknown>)) deepFreeze(member);
  }
  return value;
}

/** Drops `undefined` members so rendered objects carry only meaningful fields. */
export function compact<T extends Record<string, unknown>>(value: T): T {
  for (const key of Object.keys(value)) if (value[key] === undefined) delete value[key];
  return value;
}

export function nonEmptyRecord<V>(record: Record<string, V> | undefined): Record<string, V> | undefined {
  return record && Object.keys(record).length > 0 ? { ...record } : undefined;
}
