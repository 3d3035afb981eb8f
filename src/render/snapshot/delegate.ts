import type { MeshObject } from '../../mesh/object.js';
import type { Destination, HTTPMatchRequest, HTTPRoute, StringMatch, VirtualServiceSpec } from '../../mesh/api/index.js';
import { exportedTo, namespaceOf, resolveHost } from './common.js';
import { normaliseGatewayName } from './translate-route.js';

/*
 * VirtualService delegation, as istiod merges it (pilot/pkg/model/virtualservice.go): a root
 * VirtualService (with hosts) whose http route names `delegate: {name, namespace}` takes, in that
 * route's place, the delegate's http routes, each with its matches merged into the root route's
 * (a delegate match must fall within a root match, else that pair is dropped; a delegate route
 * with no surviving match is dropped). Delegates have no hosts and are not routable by themselves;
 * a delegate not exported to the root's namespace, or missing, contributes nothing; delegation is
 * one level deep. Short host names in a delegate resolve in the delegate's namespace.
 */

/** The VirtualServices to index: delegates removed, roots with their delegate routes expanded. */
export function expandDelegates(
  virtualServices: readonly MeshObject<VirtualServiceSpec>[],
  defaultExportTo: string[] | undefined,
): MeshObject<VirtualServiceSpec>[] {
  const delegates = new Map<string, MeshObject<VirtualServiceSpec>>();
  for (const vs of virtualServices) if (isDelegate(vs)) delegates.set(`${namespaceOf(vs)}/${vs.metadata.name}`, vs);
  const out: MeshObject<VirtualServiceSpec>[] = [];
  for (const vs of virtualServices) {
    if (isDelegate(vs)) continue;
    const http = vs.spec.http ?? [];
    if (!http.some((rule) => rule.delegate)) {
      out.push(vs);
      continue;
    }
    const namespace = namespaceOf(vs);
    const expanded = http.flatMap((rule): HTTPRoute[] => {
      if (!rule.delegate) return [rule];
      const delegate = delegates.get(`${rule.delegate.namespace ?? namespace}/${rule.delegate.name ?? ''}`);
      if (!delegate || !exportedTo(delegate.spec.exportTo ?? defaultExportTo, namespaceOf(delegate), namespace)) return [];
      const root = resolveNames(rule, namespace);
      return (delegate.spec.http ?? [])
        .filter((leaf) => !leaf.delegate)
        .map((leaf) => mergeHttpRoute(root, resolveNames(leaf, namespaceOf(delegate))))
        .filter((merged): merged is HTTPRoute => merged !== undefined);
    });
    out.push({ ...vs, spec: { ...vs.spec, http: expanded } });
  }
  return out;
}

function isDelegate(vs: MeshObject<VirtualServiceSpec>): boolean {
  return !vs.spec?.hosts || vs.spec.hosts.length === 0;
}

function resolveDestination(destination: Destination, namespace: string): Destination {
  return { ...destination, host: resolveHost(destination.host, namespace) };
}

/**
 * Short names mean services and gateways of the namespace of the VirtualService that wrote them
 * (istiod resolves each VirtualService before merging), wherever a delegate's routes end up.
 */
function resolveNames(rule: HTTPRoute, namespace: string): HTTPRoute {
  return {
    ...rule,
    ...(rule.match
      ? { match: rule.match.map((m) => (m.gateways ? { ...m, gateways: m.gateways.map((g) => normaliseGatewayName(g, namespace)) } : m)) }
      : {}),
    ...(rule.route ? { route: rule.route.map((d) => ({ ...d, destination: resolveDestination(d.destination, namespace) })) } : {}),
    ...(rule.mirror ? { mirror: resolveDestination(rule.mirror, namespace) } : {}),
    ...(rule.mirrors ? { mirrors: rule.mirrors.map((m) => ({ ...m, destination: resolveDestination(m.destination, namespace) })) } : {}),
  };
}

/** Istio's mergeHTTPRoute: the delegate route, with merged matches and the root's policies where it has none. */
export function mergeHttpRoute(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | undefined {
  const match = mergeHttpMatches(root.match ?? [], leaf.match ?? []);
  if (match === undefined) return undefined;
  const merged: HTTPRoute = { ...leaf, match };
  if (match.length === 0) delete merged.match;
  delete merged.delegate;
  const name = joinNames(root.name, leaf.name);
  if (name) merged.name = name;
  merged.rewrite ??= root.rewrite;
  merged.directResponse ??= root.directResponse;
  merged.timeout ??= root.timeout;
  merged.retries ??= root.retries;
  merged.fault ??= root.fault;
  merged.mirror ??= root.mirror;
  merged.mirrorPercent ??= root.mirrorPercent;
  merged.mirrorPercentage ??= root.mirrorPercentage;
  merged.corsPolicy ??= root.corsPolicy;
  merged.mirrors ??= root.mirrors;
  merged.headers ??= root.headers;
  for (const key of Object.keys(merged) as Array<keyof HTTPRoute>) if (merged[key] === undefined) delete merged[key];
  return merged;
}

function joinNames(root: string | undefined, leaf: string | undefined): string | undefined {
  if (!leaf) return root;
  return root ? `${root}-${leaf}` : leaf;
}

/**
 * Istio's mergeHTTPMatchRequests: every delegate match must fall within at least one root match
 * (each compatible pair gives one merged match); undefined = conflict (the route is dropped).
 */
export function mergeHttpMatches(root: HTTPMatchRequest[], leaf: HTTPMatchRequest[]): HTTPMatchRequest[] | undefined {
  if (root.length === 0) return leaf;
  if (leaf.length === 0) return root;
  const out: HTTPMatchRequest[] = [];
  for (const sub of leaf) {
    const compatible = root.filter((r) => !matchConflict(r, sub));
    if (compatible.length === 0) return undefined;
    for (const r of compatible) out.push(mergeHttpMatch(r, sub));
  }
  return out;
}

function mergeHttpMatch(root: HTTPMatchRequest, leaf: HTTPMatchRequest): HTTPMatchRequest {
  const out: HTTPMatchRequest = { ...leaf };
  const name = joinNames(root.name, leaf.name);
  if (name) out.name = name;
  out.uri ??= root.uri;
  out.scheme ??= root.scheme;
  out.method ??= root.method;
  out.authority ??= root.authority;
  if (!out.port) out.port = root.port;
  if (!out.sourceNamespace) out.sourceNamespace = root.sourceNamespace;
  if (!out.gateways || out.gateways.length === 0) out.gateways = root.gateways;
  if (!out.statPrefix) out.statPrefix = root.statPrefix;
  out.headers = mergeMaps(root.headers, leaf.headers);
  out.withoutHeaders = mergeMaps(root.withoutHeaders, leaf.withoutHeaders);
  out.queryParams = mergeMaps(root.queryParams, leaf.queryParams);
  out.sourceLabels = mergeMaps(root.sourceLabels, leaf.sourceLabels);
  for (const key of Object.keys(out) as Array<keyof HTTPMatchRequest>) if (out[key] === undefined) delete out[key];
  return out;
}

function mergeMaps<T>(root: Record<string, T> | undefined, leaf: Record<string, T> | undefined): Record<string, T> | undefined {
  if (!root) return leaf;
  if (!leaf) return root;
  return { ...root, ...leaf };
}

/** Istio's hasConflict: the delegate match cannot be narrowed into the root match. */
function matchConflict(root: HTTPMatchRequest, leaf: HTTPMatchRequest): boolean {
  const pairs: Array<[StringMatch | undefined, StringMatch | undefined]> = [
    [root.uri, leaf.uri],
    [root.scheme, leaf.scheme],
    [root.method, leaf.method],
    [root.authority, leaf.authority],
  ];
  for (const [key, value] of Object.entries(leaf.headers ?? {})) pairs.push([root.headers?.[key], value]);
  for (const [key, value] of Object.entries(leaf.withoutHeaders ?? {})) pairs.push([root.withoutHeaders?.[key], value]);
  for (const [key, value] of Object.entries(leaf.queryParams ?? {})) pairs.push([root.queryParams?.[key], value]);
  if (pairs.some(([r, l]) => stringMatchConflict(r, l))) return true;
  if ((root.ignoreUriCase ?? false) !== (leaf.ignoreUriCase ?? false)) return true;
  if (root.port && leaf.port && root.port !== leaf.port) return true;
  if (root.sourceNamespace && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [key, value] of Object.entries(leaf.sourceLabels ?? {})) {
    if (root.sourceLabels && key in root.sourceLabels && root.sourceLabels[key] !== value) return true;
  }
  if (leaf.gateways && leaf.gateways.length > 0 && root.gateways && root.gateways.length > 0) {
    if (!leaf.gateways.every((g) => root.gateways!.includes(g))) return true;
  }
  return false;
}

/** Istio's stringMatchConflict: the leaf must be a sub-match (same exact, or a prefix/exact under the root prefix). */
function stringMatchConflict(root: StringMatch | undefined, leaf: StringMatch | undefined): boolean {
  if (!root || !leaf) return false;
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) {
    if (leaf.prefix) return true;
    return leaf.exact !== root.exact;
  }
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}
