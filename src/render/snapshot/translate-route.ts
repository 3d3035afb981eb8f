import type {
  CorsPolicy as IstioCorsPolicy,
  Destination,
  HTTPMatchRequest,
  HTTPRoute,
  HeaderOperations,
  StringMatch,
} from '../../mesh/api/index.js';
import type {
  CorsPolicy,
  FaultPolicy,
  HeaderOps,
  RetryPolicy,
  Route,
  RouteAction,
  RouteDestination,
  RouteMatch,
  StringMatcher,
} from '../../mesh/snapshot.js';
import { DISABLED_RETRY, translateRetry } from './mesh-settings.js';
import { compact, durationMs, resolveHost } from './common.js';

/** The reserved gateway name that binds a VirtualService to every sidecar. */
export const MESH_GATEWAY = 'mesh';

/** An upstream cluster a route references: `outbound|<port>|<subset>|<fqdn>`. */
export interface ClusterRef {
  name: string;
  host: string;
  port: number;
  subset?: string;
}

export function clusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

/** The parts of a match block that select workloads (evaluated at render time, never at runtime). */
export interface WorkloadCondition {
  /** Normalised gateway names the block applies to (`mesh` or `<ns>/<name>`). */
  gateways: string[];
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
}

/** One VirtualService http rule, translated once and shared by every proxy it applies to. */
export interface PreparedRule {
  /** The rule with every match block; proxies whose workload conditions drop blocks get a filtered copy. */
  route: Route;
  /** One entry per `route.match` block (empty when the rule has no match: a catch-all). */
  conditions: WorkloadCondition[];
  /** Per match block: nothing left to match at runtime (istiod stops emitting routes after one). */
  catchAllBlocks: boolean[];
  clusters: ClusterRef[];
}

export interface RouteContext {
  /** The VirtualService's namespace: short hosts and gateway names resolve in it. */
  namespace: string;
  /** Retry policy for rules without `retries` (meshConfig.defaultHttpRetryPolicy or Istio's default). */
  defaultRetry: RetryPolicy;
  /** Service port a destination without `port` goes to; `matchPort` is the rule's single match port, if any. */
  resolvePort(host: string, matchPort: number | undefined): number;
}

export function normaliseGatewayName(name: string, namespace: string): string {
  if (name === MESH_GATEWAY || name.includes('/')) return name;
  return `${namespace}/${name}`;
}

export function translateStringMatch(match: StringMatch | undefined | null): StringMatcher | undefined {
  if (!match || typeof match !== 'object') return undefined;
  if (match.exact !== undefined) return { exact: match.exact };
  if (match.prefix !== undefined) return { prefix: match.prefix };
  if (match.regex !== undefined) return { regex: match.regex };
  return undefined;
}

/** Header and query-parameter maps: `{}` means "present with any value". */
function translateMatchMap(
  map: Record<string, StringMatch> | undefined,
  ignored: ReadonlySet<string> = new Set(),
): Record<string, StringMatcher> | undefined {
  if (!map) return undefined;
  const out: Record<string, StringMatcher> = {};
  for (const [key, value] of Object.entries(map)) {
    if (ignored.has(key)) continue;
    out[key] = translateStringMatch(value) ?? { present: true };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

// Istio ignores these header keys: they are matched through uri/scheme/method/authority instead.
const PSEUDO_HEADER_KEYS: ReadonlySet<string> = new Set(['uri', 'scheme', 'method', 'authority']);

export function translateHttpMatch(match: HTTPMatchRequest): RouteMatch {
  const uri = translateStringMatch(match.uri);
  return compact({
    uri,
    ignoreUriCase: match.ignoreUriCase && uri && !('regex' in uri) ? true : undefined,
    scheme: translateStringMatch(match.scheme),
    method: translateStringMatch(match.method),
    authority: translateStringMatch(match.authority),
    headers: translateMatchMap(match.headers, PSEUDO_HEADER_KEYS),
    withoutHeaders: translateMatchMap(match.withoutHeaders, PSEUDO_HEADER_KEYS),
    queryParams: translateMatchMap(match.queryParams),
    port: match.port,
    name: match.name,
  });
}

/** A runtime match that accepts every request: empty, or only `uri: {prefix: /}`. */
export function isCatchAllMatch(match: RouteMatch): boolean {
  const keys = Object.keys(match).filter((k) => k !== 'name');
  if (keys.length === 0) return true;
  return keys.length === 1 && !!match.uri && 'prefix' in match.uri && match.uri.prefix === '/';
}

function translateHeaderOps(ops: HeaderOperations | undefined): HeaderOps | undefined {
  if (!ops) return undefined;
  const out = compact({
    set: ops.set && Object.keys(ops.set).length > 0 ? { ...ops.set } : undefined,
    add: ops.add && Object.keys(ops.add).length > 0 ? { ...ops.add } : undefined,
    remove: ops.remove && ops.remove.length > 0 ? [...ops.remove] : undefined,
  });
  return Object.keys(out).length > 0 ? out : undefined;
}

function translateFault(fault: NonNullable<HTTPRoute['fault']>): FaultPolicy | undefined {
  const out: FaultPolicy = {};
  const delayMs = durationMs(fault.delay?.fixedDelay);
  if (fault.delay && delayMs !== undefined) {
    // percentage unset ⇒ no request is delayed; the deprecated integer `percent` still counts
    out.delay = { fixedDelayMs: delayMs, percent: fault.delay.percentage?.value ?? fault.delay.percent ?? 0 };
  }
  if (fault.abort && fault.abort.httpStatus !== undefined) {
    out.abort = { httpStatus: fault.abort.httpStatus, percent: fault.abort.percentage?.value ?? 0 };
  }
  return out.delay || out.abort ? out : undefined;
}

function translateCors(cors: IstioCorsPolicy): CorsPolicy {
  const origins: StringMatcher[] = [];
  for (const origin of cors.allowOrigins ?? []) {
    const matcher = translateStringMatch(origin);
    if (matcher) origins.push(matcher);
  }
  for (const origin of cors.allowOrigin ?? []) origins.push({ exact: origin });
  const maxAgeMs = durationMs(cors.maxAge);
  return compact({
    allowOrigins: origins,
    allowMethods: [...(cors.allowMethods ?? [])],
    allowHeaders: [...(cors.allowHeaders ?? [])],
    exposeHeaders: [...(cors.exposeHeaders ?? [])],
    maxAgeSeconds: maxAgeMs === undefined ? undefined : Math.floor(maxAgeMs / 1000),
    allowCredentials: cors.allowCredentials,
    unmatchedPreflights: cors.unmatchedPreflights === 'IGNORE' ? ('IGNORE' as const) : ('FORWARD' as const),
  });
}

function decodeBase64(text: string): string {
  return Buffer.from(text, 'base64').toString('utf8');
}

/**
 * Translates one VirtualService http rule. Returns undefined for rules Trellis does not serve
 * (delegate, or nothing to do) — validation reports those; rendering skips them.
 */
export function translateHttpRoute(rule: HTTPRoute, ruleIndex: number, vsName: string, ctx: RouteContext): PreparedRule | undefined {
  if (rule.delegate) return undefined;
  const blocks = rule.match ?? [];
  const matchPorts = new Set(blocks.map((b) => b.port));
  const matchPort = matchPorts.size === 1 ? [...matchPorts][0] : undefined;
  const clusters: ClusterRef[] = [];
  const refer = (destination: Destination): ClusterRef => {
    const host = resolveHost(destination.host, ctx.namespace);
    const port = destination.port?.number ?? ctx.resolvePort(host, matchPort);
    const ref: ClusterRef = compact({ name: clusterName(port, destination.subset, host), host, port, subset: destination.subset || undefined });
    if (!clusters.some((c) => c.name === ref.name)) clusters.push(ref);
    return ref;
  };

  let action: RouteAction;
  if (rule.directResponse) {
    const body = rule.directResponse.body;
    const text = body?.string !== undefined ? body.string : body?.bytes !== undefined ? decodeBase64(body.bytes) : undefined;
    action = compact({ kind: 'directResponse' as const, status: rule.directResponse.status, body: text });
  } else if (rule.redirect) {
    const r = rule.redirect;
    action = {
      kind: 'redirect',
      redirect: compact({ uri: r.uri, authority: r.authority, port: r.port, derivePort: r.derivePort, scheme: r.scheme, code: r.redirectCode ?? 301 }),
    };
  } else if (rule.route && rule.route.length > 0) {
    const single = rule.route.length === 1;
    const destinations: RouteDestination[] = rule.route.map((d) =>
      compact({
        cluster: refer(d.destination).name,
        // weights are relative; a lone destination takes everything, weight 0 gets nothing
        weight: single ? 100 : (d.weight ?? 0),
        requestHeaders: translateHeaderOps(d.headers?.request),
        responseHeaders: translateHeaderOps(d.headers?.response),
      }),
    );
    action = { kind: 'route', destinations };
  } else {
    return undefined;
  }

  const fault = rule.fault ? translateFault(rule.fault) : undefined;
  let retry: RetryPolicy;
  let timeoutMs: number | undefined;
  if (rule.fault) {
    // Istio does not set up timeouts or retries on routes with client-side fault injection
    retry = DISABLED_RETRY as RetryPolicy;
  } else {
    retry = rule.retries ? translateRetry(rule.retries) : ctx.defaultRetry;
    const timeout = durationMs(rule.timeout);
    timeoutMs = timeout && timeout > 0 ? timeout : undefined;
  }

  const mirrors: Route['mirrors'] = [];
  if (rule.mirror) {
    mirrors.push({ cluster: refer(rule.mirror).name, percent: rule.mirrorPercentage?.value ?? rule.mirrorPercent ?? 100 });
  }
  for (const mirror of rule.mirrors ?? []) {
    mirrors.push({ cluster: refer(mirror.destination).name, percent: mirror.percentage?.value ?? 100 });
  }

  const rewrite = rule.rewrite
    ? compact({
        uri: rule.rewrite.uri,
        uriRegex:
          rule.rewrite.uriRegexRewrite?.match !== undefined
            ? { match: rule.rewrite.uriRegexRewrite.match, rewrite: rule.rewrite.uriRegexRewrite.rewrite ?? '' }
            : undefined,
        authority: rule.rewrite.authority,
      })
    : undefined;

  const match = blocks.map(translateHttpMatch);
  const route: Route = compact({
    name: `${ctx.namespace}/${vsName}/${rule.name ?? String(ruleIndex)}`,
    match,
    action,
    rewrite: rewrite && Object.keys(rewrite).length > 0 ? rewrite : undefined,
    timeoutMs,
    retry,
    fault,
    mirrors,
    requestHeaders: translateHeaderOps(rule.headers?.request),
    responseHeaders: translateHeaderOps(rule.headers?.response),
    cors: rule.corsPolicy ? translateCors(rule.corsPolicy) : undefined,
  });
  const conditions = blocks.map((b) =>
    compact({
      gateways: (b.gateways ?? []).map((g) => normaliseGatewayName(g, ctx.namespace)),
      sourceLabels: b.sourceLabels && Object.keys(b.sourceLabels).length > 0 ? { ...b.sourceLabels } : undefined,
      sourceNamespace: b.sourceNamespace || undefined,
    }),
  );
  return { route, conditions, catchAllBlocks: match.map(isCatchAllMatch), clusters };
}

/** What a proxy is, for evaluating match-block workload selectors. */
export interface WorkloadContext {
  labels: Record<string, string>;
  namespace: string;
  /** The gateways this route config is rendered for: `mesh` for sidecars, `<ns>/<name>` for gateways. */
  gateways: ReadonlySet<string>;
}

function conditionApplies(
  condition: WorkloadCondition,
  vsGateways: readonly string[],
  workload: WorkloadContext,
): boolean {
  const gateways = condition.gateways.length > 0 ? condition.gateways : vsGateways;
  if (!gateways.some((g) => workload.gateways.has(g))) return false;
  if (condition.sourceNamespace !== undefined && condition.sourceNamespace !== workload.namespace) return false;
  if (condition.sourceLabels) {
    for (const [key, value] of Object.entries(condition.sourceLabels)) if (workload.labels[key] !== value) return false;
  }
  return true;
}

/**
 * Applies a rule's workload selectors to one proxy: keeps the match blocks that apply (the shared
 * Route object when all do), drops the rule when none does. `catchAll` says no later rule can match.
 */
export function applyWorkloadConditions(
  rule: PreparedRule,
  vsGateways: readonly string[],
  workload: WorkloadContext,
): { route: Route; catchAll: boolean } | undefined {
  if (rule.conditions.length === 0) return { route: rule.route, catchAll: true };
  const kept: number[] = [];
  for (let i = 0; i < rule.conditions.length; i++) {
    if (conditionApplies(rule.conditions[i], vsGateways, workload)) kept.push(i);
  }
  if (kept.length === 0) return undefined;
  const catchAll = kept.some((i) => rule.catchAllBlocks[i]);
  if (kept.length === rule.conditions.length) return { route: rule.route, catchAll };
  return { route: { ...rule.route, match: kept.map((i) => rule.route.match[i]) }, catchAll };
}

/** Whether any match block of the rule depends on who the proxy is (labels or namespace). */
export function dependsOnWorkload(rule: PreparedRule): boolean {
  return rule.conditions.some((c) => c.sourceLabels !== undefined || c.sourceNamespace !== undefined || c.gateways.length > 0);
}
