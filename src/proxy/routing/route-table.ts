import type { RedirectAction, Route, RouteConfig, RouteMatch, RetryPolicy, FaultPolicy } from '../../mesh/snapshot.js';
import { compileCors, type CompiledCors } from './cors.js';
import { compileHeaderOps, type CompiledHeaderOps } from './header-ops.js';
import { compileFullRegex, compileRegexRewrite, compileStringMatcher, type CompiledMatcher } from './string-matcher.js';

/** The request attributes routing looks at; built once per request by the listener. */
export interface RouteRequest {
  /** Host / :authority as sent (may carry `:port`), lowercased. */
  host: string;
  /** Path without the query string. */
  path: string;
  /** Raw query string without `?` ('' when none). */
  query: string;
  method: string;
  scheme: string;
  /** Destination port: the port the client addressed (Host port, else the scheme default) or the gateway listener port. */
  port: number;
  headers: Record<string, string | string[] | undefined>;
}

type MatchFn = (req: RouteRequest, ctx: MatchContext) => boolean;

/** Lazily computed per-request values shared by all matchers of one lookup. */
export interface MatchContext {
  query?: URLSearchParams;
}

export interface CompiledMatch {
  test: MatchFn;
  /** The literal prefix this block matched on (for prefix rewrites / redirects). */
  uriPrefix?: string;
  uriKind?: 'exact' | 'prefix' | 'regex';
  name?: string;
}

export interface CompiledDestination {
  cluster: string;
  weight: number;
  requestHeaders?: CompiledHeaderOps;
  responseHeaders?: CompiledHeaderOps;
}

export interface CompiledRewrite {
  uri?: string;
  uriRegex?: (path: string) => string;
  authority?: string;
}

export interface CompiledRoute {
  name: string;
  matches: CompiledMatch[];
  action: 'route' | 'redirect' | 'directResponse';
  destinations: CompiledDestination[];
  /** Cumulative weights, for the weighted pick. */
  cumulative: number[];
  totalWeight: number;
  redirect?: RedirectAction;
  directResponse?: { status: number; body?: string };
  rewrite?: CompiledRewrite;
  timeoutMs?: number;
  retry: RetryPolicy;
  fault?: FaultPolicy;
  mirrors: Array<{ cluster: string; percent: number }>;
  requestHeaders?: CompiledHeaderOps;
  responseHeaders?: CompiledHeaderOps;
  cors?: CompiledCors;
  /** Free slot for the server to attach per-snapshot precomputed state (e.g. composed handlers). */
  runtime?: unknown;
}

export interface CompiledVirtualHost {
  name: string;
  routes: CompiledRoute[];
}

/** Immutable per-snapshot table; a reconfiguration swaps the reference. */
export interface RouteTable {
  name: string;
  exact: Map<string, CompiledVirtualHost>;
  /** `*.suffix` domains, longest suffix first. */
  suffixes: Array<{ suffix: string; vhost: CompiledVirtualHost }>;
  /** `prefix.*` domains, longest prefix first. */
  prefixes: Array<{ prefix: string; vhost: CompiledVirtualHost }>;
  any?: CompiledVirtualHost;
}

export interface RouteDecision {
  vhost: CompiledVirtualHost;
  route: CompiledRoute;
  match?: CompiledMatch;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

function compileMatch(m: RouteMatch): CompiledMatch {
  const tests: MatchFn[] = [];
  let uriPrefix: string | undefined;
  let uriKind: CompiledMatch['uriKind'];
  if (m.uri) {
    const f = compileStringMatcher(m.uri, m.ignoreUriCase === true && !('regex' in m.uri));
    tests.push((req) => f(req.path));
    if ('prefix' in m.uri) { uriPrefix = m.uri.prefix; uriKind = 'prefix'; }
    else if ('exact' in m.uri) uriKind = 'exact';
    else if ('regex' in m.uri) uriKind = 'regex';
  }
  if (m.scheme) { const f = compileStringMatcher(m.scheme); tests.push((req) => f(req.scheme)); }
  if (m.method) { const f = compileStringMatcher(m.method); tests.push((req) => f(req.method)); }
  if (m.authority) { const f = compileStringMatcher(m.authority); tests.push((req) => f(req.host)); }
  if (m.port !== undefined) { const port = m.port; tests.push((req) => req.port === port); }
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const key = name.toLowerCase();
    // Istio ignores header matches on the pseudo-header names.
    if (key === 'uri' || key === 'scheme' || key === 'method' || key === 'authority') continue;
    const f = compileStringMatcher(sm);
    tests.push((req) => f(headerValue(req.headers[key])));
  }
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) {
    const key = name.toLowerCase();
    const f = compileStringMatcher(sm);
    tests.push((req) => !f(headerValue(req.headers[key])));
  }
  for (const [name, sm] of Object.entries(m.queryParams ?? {})) {
    const f = compileStringMatcher(sm);
    tests.push((req, ctx) => {
      if (!ctx.query) ctx.query = new URLSearchParams(req.query);
      const v = ctx.query.get(name);
      return f(v === null ? undefined : v);
    });
  }
  const n = tests.length;
  let test: MatchFn;
  if (n === 0) test = () => true;
  else if (n === 1) test = tests[0];
  else test = (req, ctx) => { for (let i = 0; i < n; i++) if (!tests[i](req, ctx)) return false; return true; };
  return { test, uriPrefix, uriKind, name: m.name };
}

export function compileRoute(route: Route): CompiledRoute {
  const compiled: CompiledRoute = {
    name: route.name,
    matches: route.match.map(compileMatch),
    action: route.action.kind,
    destinations: [],
    cumulative: [],
    totalWeight: 0,
    timeoutMs: route.timeoutMs,
    retry: route.retry,
    fault: route.fault,
    mirrors: route.mirrors ?? [],
    requestHeaders: compileHeaderOps(route.requestHeaders),
    responseHeaders: compileHeaderOps(route.responseHeaders),
    cors: compileCors(route.cors),
  };
  if (route.action.kind === 'route') {
    let total = 0;
    for (const d of route.action.destinations) {
      compiled.destinations.push({
        cluster: d.cluster,
        weight: d.weight,
        requestHeaders: compileHeaderOps(d.requestHeaders),
        responseHeaders: compileHeaderOps(d.responseHeaders),
      });
      total += Math.max(0, d.weight);
      compiled.cumulative.push(total);
    }
    compiled.totalWeight = total;
    if (compiled.destinations.length === 0) throw new Error(`route ${route.name}: no destinations`);
  } else if (route.action.kind === 'redirect') {
    compiled.redirect = route.action.redirect;
  } else {
    compiled.directResponse = { status: route.action.status, body: route.action.body };
  }
  if (route.rewrite) {
    compiled.rewrite = {
      uri: route.rewrite.uri,
      authority: route.rewrite.authority,
      uriRegex: route.rewrite.uriRegex ? compileRegexRewrite(route.rewrite.uriRegex.match, route.rewrite.uriRegex.rewrite) : undefined,
    };
  }
  return compiled;
}

/** Compiles a RouteConfig once; throws (with the route name) on invalid regexes. */
export function compileRouteTable(config: RouteConfig): RouteTable {
  const table: RouteTable = { name: config.name, exact: new Map(), suffixes: [], prefixes: [] };
  for (const vh of config.virtualHosts) {
    const compiled: CompiledVirtualHost = {
      name: vh.name,
      routes: vh.routes.map((r) => {
        try {
          return compileRoute(r);
        } catch (err) {
          throw new Error(`routeConfig ${config.name} virtualHost ${vh.name} route ${r.name}: ${(err as Error).message}`);
        }
      }),
    };
    for (const raw of vh.domains) {
      const d = raw.toLowerCase();
      if (d === '*') { table.any ??= compiled; continue; }
      if (d.startsWith('*')) table.suffixes.push({ suffix: d.slice(1), vhost: compiled });
      else if (d.endsWith('*')) table.prefixes.push({ prefix: d.slice(0, -1), vhost: compiled });
      else if (!table.exact.has(d)) table.exact.set(d, compiled);
    }
  }
  table.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  table.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return table;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) { const end = host.indexOf(']'); return end > 0 ? host.slice(0, end + 1) : host; }
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/** Envoy's virtual-host selection: exact, then longest `*.suffix`, then longest `prefix.*`, then `*`. */
export function findVirtualHost(table: RouteTable, host: string): CompiledVirtualHost | undefined {
  const exact = table.exact.get(host);
  if (exact) return exact;
  const bare = stripPort(host);
  if (bare !== host) { const e = table.exact.get(bare); if (e) return e; }
  for (let i = 0; i < table.suffixes.length; i++) {
    const s = table.suffixes[i];
    if ((host.endsWith(s.suffix) && host.length > s.suffix.length) || (bare.endsWith(s.suffix) && bare.length > s.suffix.length)) return s.vhost;
  }
  for (let i = 0; i < table.prefixes.length; i++) {
    const p = table.prefixes[i];
    if (host.startsWith(p.prefix) && host.length > p.prefix.length) return p.vhost;
  }
  return table.any;
}

/** First route whose match blocks (OR across, AND within) accept the request; undefined = no route (NR). */
export function matchRoute(table: RouteTable, req: RouteRequest): RouteDecision | undefined {
  const vhost = findVirtualHost(table, req.host);
  if (!vhost) return undefined;
  const ctx: MatchContext = {};
  const routes = vhost.routes;
  for (let r = 0; r < routes.length; r++) {
    const route = routes[r];
    const matches = route.matches;
    if (matches.length === 0) return { vhost, route };
    for (let m = 0; m < matches.length; m++) {
      if (matches[m].test(req, ctx)) return { vhost, route, match: matches[m] };
    }
  }
  return undefined;
}

/** Weighted destination pick; `random` returns [0, 1) and is injectable for tests. */
export function pickDestination(route: CompiledRoute, random: () => number = Math.random): CompiledDestination {
  const d = route.destinations;
  if (d.length === 1 || route.totalWeight <= 0) return d[0];
  const point = random() * route.totalWeight;
  const cum = route.cumulative;
  for (let i = 0; i < cum.length; i++) if (point < cum[i]) return d[i];
  return d[d.length - 1];
}

/** The new path (with the original query) after `rewrite.uri` / `uriRegexRewrite`, or undefined if unchanged. */
export function rewritePath(route: CompiledRoute, match: CompiledMatch | undefined, path: string, query: string): string | undefined {
  const rw = route.rewrite;
  if (!rw) return undefined;
  let next: string | undefined;
  if (rw.uriRegex) {
    next = rw.uriRegex(path);
  } else if (rw.uri !== undefined) {
    if (match?.uriKind === 'prefix' && match.uriPrefix !== undefined) next = rw.uri + path.slice(match.uriPrefix.length);
    else if (match?.uriKind === 'exact' || match?.uriKind === 'regex') next = rw.uri;
    // No URI match: Istio routes on prefix "/", so the leading slash is the matched prefix.
    else next = rw.uri + path.slice(1);
  }
  if (next === undefined) return undefined;
  if (next === '') next = '/';
  return query ? `${next}?${query}` : next;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443 };

/** Location for a redirect route, following Envoy's redirect action. */
export function redirectLocation(route: CompiledRoute, match: CompiledMatch | undefined, req: RouteRequest): string {
  const r = route.redirect!;
  const scheme = r.scheme ?? req.scheme;
  const bare = stripPort(req.host);
  const hostPort = req.host.length > bare.length ? Number(req.host.slice(bare.length + 1)) : undefined;
  const host = r.authority !== undefined ? r.authority : bare;
  let port: number | undefined;
  if (r.port !== undefined) port = r.port;
  else if (r.derivePort === 'FROM_REQUEST_PORT') port = req.port;
  else if (r.derivePort === 'FROM_PROTOCOL_DEFAULT') port = undefined;
  else if (r.authority === undefined && r.scheme === undefined) port = hostPort;
  let path = req.path;
  let query = req.query;
  if (r.uri !== undefined) {
    const q = r.uri.indexOf('?');
    if (q >= 0) { path = r.uri.slice(0, q); query = r.uri.slice(q + 1); } else path = r.uri;
  } else if (r.prefixRewrite !== undefined) {
    const prefix = match?.uriKind === 'prefix' && match.uriPrefix !== undefined ? match.uriPrefix : '/';
    path = r.prefixRewrite + path.slice(prefix.length);
    if (path === '') path = '/';
  }
  const hostHasPort = host.length > stripPort(host).length;
  const portPart = port !== undefined && !hostHasPort && port !== DEFAULT_PORTS[scheme] ? `:${port}` : '';
  return `${scheme}://${host}${portPart}${path}${query ? `?${query}` : ''}`;
}

export { compileFullRegex, type CompiledMatcher };
