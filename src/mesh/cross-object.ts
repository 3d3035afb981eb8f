/**
 * Checks across the objects of one cluster. Errors where the config cannot work (duplicate objects,
 * two IstioOperators, an IstioOperator whose spec.tag differs from its `versions/<v>/` folder, a
 * delegate target with hosts); warnings where it works but probably not as meant.
 *
 * Known-host heuristic (the repository does not hold the cluster's Services): a host is known when
 * a DestinationRule, ServiceEntry or VirtualService in the set names it, or a Kubernetes `v1`
 * Service `<name>` in the set exists (host `<name>.<namespace>.svc.cluster.local`). Short names
 * resolve as Istio resolves them: a host without dots becomes `<host>.<namespace>.svc.cluster.local`
 * in the referring object's namespace (`default` when unset); hosts with dots are taken as written.
 * Wildcard hosts (`*.example.com`) cover the names under them.
 */
import { childPath } from './field-path.js';
import { lookupKind } from './kinds.js';
import type { Diagnostic, MeshObject } from './object.js';
import { arr, isObj } from './validators/checks.js';
import type { Json } from './validators/checks.js';
import { ObjectReport } from './validators/context.js';
import { hostCovers } from './validators/virtual-service.js';

const DEFAULT_NAMESPACE = 'default';
const DEFAULT_ROOT_NAMESPACE = 'istio-system';
const VERSION_FOLDER = /(?:^|[\\/])versions[\\/]([^\\/]+)[\\/]/;

export function namespaceOf(obj: MeshObject): string {
  const namespace = obj.metadata?.namespace;
  return typeof namespace === 'string' && namespace !== '' ? namespace : DEFAULT_NAMESPACE;
}

/** Istio's short-name resolution: a name without dots is a Service in the given namespace. */
export function resolveHost(host: string, namespace: string): string {
  if (host.includes('*') || host.includes('.')) return host;
  return `${host}.${namespace}.svc.cluster.local`;
}

function where(obj: MeshObject): string {
  const s = obj.source;
  return s ? `${s.file}:${s.line}` : 'unknown position';
}

interface Destinations {
  path: string;
  host: string;
  subset?: string;
}

/** Every destination a VirtualService routes or mirrors to, with its field path. */
function destinationsOf(spec: Json): Destinations[] {
  const found: Destinations[] = [];
  const add = (path: string, dest: unknown): void => {
    if (isObj(dest) && typeof dest.host === 'string') {
      found.push({ path, host: dest.host, subset: typeof dest.subset === 'string' ? dest.subset : undefined });
    }
  };
  for (const section of ['http', 'tls', 'tcp']) {
    arr(spec[section]).forEach((route, i) => {
      if (!isObj(route)) return;
      const routePath = `spec.${section}[${i}]`;
      arr(route.route).forEach((entry, j) => {
        if (isObj(entry)) add(childPath(`${routePath}.route[${j}]`, 'destination'), entry.destination);
      });
      add(`${routePath}.mirror`, route.mirror);
      arr(route.mirrors).forEach((mirror, j) => {
        if (isObj(mirror)) add(`${routePath}.mirrors[${j}].destination`, mirror.destination);
      });
    });
  }
  return found;
}

export function validateCrossObject(objs: readonly MeshObject[]): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const reports = new Map<MeshObject, ObjectReport>();
  const reportFor = (obj: MeshObject): ObjectReport => {
    let report = reports.get(obj);
    if (!report) reports.set(obj, (report = new ObjectReport(obj)));
    return report;
  };

  const byKind = new Map<string, MeshObject[]>();
  const seen = new Map<string, MeshObject>();
  for (const obj of objs) {
    const found = lookupKind(obj.apiVersion, obj.kind);
    if (found.status !== 'supported' && !(found.status === 'kubernetes' && found.informational)) continue;
    const group = found.status === 'supported' ? found.info.group : found.group;
    const list = byKind.get(obj.kind) ?? [];
    list.push(obj);
    byKind.set(obj.kind, list);
    if (obj.kind === 'IstioOperator') continue; // reported below, named or not
    const identity = `${group}/${obj.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
    const first = seen.get(identity);
    if (first) reportFor(obj).error('metadata.name', `duplicate ${obj.kind} ${reportFor(obj).name} (first defined at ${where(first)})`);
    else seen.set(identity, obj);
  }
  const kind = (k: string): MeshObject[] => byKind.get(k) ?? [];

  // ---- IstioOperator: one per cluster, tag equal to its version folder ----
  const operators = kind('IstioOperator');
  operators.slice(1).forEach((op) => {
    reportFor(op).error('kind', `a cluster has exactly one IstioOperator; another is at ${where(operators[0])}`);
  });
  for (const op of operators) {
    const folder = op.source ? VERSION_FOLDER.exec(op.source.file)?.[1] : undefined;
    if (folder === undefined) continue;
    const tag = isObj(op.spec) ? op.spec.tag : undefined;
    if (tag === undefined) reportFor(op).error('spec', `spec.tag is missing; it must equal its version folder "${folder}"`);
    else if (String(tag) !== folder) reportFor(op).error('spec.tag', `spec.tag "${String(tag)}" must equal its version folder "${folder}"`);
  }
  const mesh = operators[0] && isObj(operators[0].spec) && isObj(operators[0].spec.meshConfig) ? operators[0].spec.meshConfig : {};
  const rootNamespace = typeof mesh.rootNamespace === 'string' ? mesh.rootNamespace : DEFAULT_ROOT_NAMESPACE;

  // ---- known hosts ----
  const known = new Set<string>();
  const addKnown = (host: unknown, namespace: string): void => {
    if (typeof host === 'string') known.add(resolveHost(host, namespace));
  };
  for (const dr of kind('DestinationRule')) addKnown((dr.spec as Json)?.host, namespaceOf(dr));
  for (const se of kind('ServiceEntry')) arr((se.spec as Json)?.hosts).forEach((h) => addKnown(h, namespaceOf(se)));
  for (const vs of kind('VirtualService')) arr((vs.spec as Json)?.hosts).forEach((h) => addKnown(h, namespaceOf(vs)));
  for (const svc of kind('Service')) addKnown(svc.metadata?.name, namespaceOf(svc));
  const knownWildcards = [...known].filter((h) => h.startsWith('*'));
  const isKnown = (fqdn: string): boolean => known.has(fqdn) || knownWildcards.some((h) => hostCovers(h, fqdn));

  // ---- DestinationRules by host; duplicates ----
  const rulesByHost = new Map<string, MeshObject[]>();
  for (const dr of kind('DestinationRule')) {
    const spec = dr.spec as Json;
    if (!isObj(spec) || typeof spec.host !== 'string') continue;
    const fqdn = resolveHost(spec.host, namespaceOf(dr));
    const list = rulesByHost.get(fqdn) ?? [];
    if (!isObj(spec.workloadSelector)) {
      const other = list.find((o) => namespaceOf(o) === namespaceOf(dr) && !isObj((o.spec as Json).workloadSelector));
      if (other) {
        reportFor(dr).warn('spec.host', `another DestinationRule (${reportFor(other).name} at ${where(other)}) also targets host ${JSON.stringify(spec.host)}; Istio merges them and the later one's traffic policy is ignored`);
      }
    }
    list.push(dr);
    rulesByHost.set(fqdn, list);
  }
  const wildcardRuleHosts = [...rulesByHost.keys()].filter((h) => h.startsWith('*'));
  const subsetCache = new Map<string, { rules: number; subsets: Set<string> }>();
  const subsetsFor = (fqdn: string): { rules: number; subsets: Set<string> } => {
    const cached = subsetCache.get(fqdn);
    if (cached) return cached;
    const subsets = new Set<string>();
    let rules = 0;
    const hosts = [fqdn, ...wildcardRuleHosts.filter((h) => h !== fqdn && hostCovers(h, fqdn))];
    for (const host of hosts) {
      for (const dr of rulesByHost.get(host) ?? []) {
        rules++;
        arr((dr.spec as Json).subsets).forEach((s) => {
          if (isObj(s) && typeof s.name === 'string') subsets.add(s.name);
        });
      }
    }
    const result = { rules, subsets };
    subsetCache.set(fqdn, result);
    return result;
  };

  // ---- VirtualServices: destinations, subsets, delegates, gateways ----
  const virtualServices = kind('VirtualService');
  const virtualServicesByName = new Map(virtualServices.map((o) => [`${namespaceOf(o)}/${o.metadata?.name}`, o]));
  const gatewayNames = new Set(kind('Gateway').map((gw) => `${namespaceOf(gw)}/${gw.metadata?.name}`));
  for (const vs of virtualServices) {
    const spec = vs.spec as Json;
    if (!isObj(spec)) continue;
    const namespace = namespaceOf(vs);
    const report = reportFor(vs);
    for (const dest of destinationsOf(spec)) {
      const fqdn = resolveHost(dest.host, namespace);
      if (!isKnown(fqdn)) {
        report.warn(`${dest.path}.host`, `destination host ${JSON.stringify(dest.host)} is not known: no DestinationRule, ServiceEntry, VirtualService or Service in this configuration names it`);
      }
      if (dest.subset !== undefined) {
        const { rules, subsets } = subsetsFor(fqdn);
        if (!subsets.has(dest.subset)) {
          report.warn(
            `${dest.path}.subset`,
            rules === 0
              ? `subset ${JSON.stringify(dest.subset)} is routed to, but no DestinationRule exists for host ${JSON.stringify(dest.host)}`
              : `subset ${JSON.stringify(dest.subset)} is not defined by any DestinationRule for host ${JSON.stringify(dest.host)}`,
          );
        }
      }
    }
    arr(spec.http).forEach((route, i) => {
      if (!isObj(route) || !isObj(route.delegate) || typeof route.delegate.name !== 'string') return;
      const target = `${typeof route.delegate.namespace === 'string' ? route.delegate.namespace : namespace}/${route.delegate.name}`;
      const delegate = virtualServicesByName.get(target);
      if (!delegate) report.warn(`spec.http[${i}].delegate`, `delegate VirtualService ${target} is not in this configuration`);
      else if (arr((delegate.spec as Json)?.hosts).length > 0) {
        report.error(`spec.http[${i}].delegate`, `delegate VirtualService ${target} must have no hosts (at ${where(delegate)})`);
      }
    });
    const referenced: Array<[string, string]> = arr(spec.gateways).map((g, i) => [`spec.gateways[${i}]`, String(g)]);
    arr(spec.http).forEach((route, i) => {
      if (!isObj(route)) return;
      arr(route.match).forEach((m, j) => {
        if (isObj(m)) arr(m.gateways).forEach((g, k) => referenced.push([`spec.http[${i}].match[${j}].gateways[${k}]`, String(g)]));
      });
    });
    for (const [path, gateway] of referenced) {
      if (gateway === 'mesh') continue;
      const full = gateway.includes('/') ? gateway : `${namespace}/${gateway}`;
      if (!gatewayNames.has(full)) report.warn(path, `gateway ${full} is not in this configuration`);
    }
  }

  // ---- PeerAuthentication: selector policies in the root namespace are ignored ----
  for (const pa of kind('PeerAuthentication')) {
    if (pa.metadata?.namespace === rootNamespace && isObj(pa.spec) && isObj((pa.spec as Json).selector)) {
      reportFor(pa).warn('spec.selector', `PeerAuthentication with a selector in the root namespace ${rootNamespace} is ignored by Istio`);
    }
  }

  // ---- one namespace-wide (selector-less) policy per namespace; Istio applies the oldest only ----
  const namespaceWide: Array<[string, string]> = [
    ['PeerAuthentication', 'selector'],
    ['Telemetry', 'selector'],
    ['Sidecar', 'workloadSelector'],
  ];
  for (const [kindName, selectorField] of namespaceWide) {
    const firstByNamespace = new Map<string, MeshObject>();
    for (const obj of kind(kindName)) {
      const spec = isObj(obj.spec) ? obj.spec : {};
      if (isObj(spec[selectorField]) || spec.targetRef !== undefined || arr(spec.targetRefs).length > 0) continue;
      const namespace = namespaceOf(obj);
      const first = firstByNamespace.get(namespace);
      if (first) {
        reportFor(obj).warn('spec', `namespace ${namespace} already has a ${kindName} without a selector (${reportFor(first).name} at ${where(first)}); Istio applies only one of them`);
      } else firstByNamespace.set(namespace, obj);
    }
  }

  for (const report of reports.values()) diagnostics.push(...report.diagnostics);
  return diagnostics;
}
