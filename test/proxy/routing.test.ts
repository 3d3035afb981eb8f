import { describe, expect, it } from '@jest/globals';
import {
  compileRouteTable,
  matchRoute,
  pickDestination,
  redirectLocation,
  rewritePath,
  evaluateCors,
  compileCors,
  applyHeaderOps,
  compileHeaderOps,
  type RouteRequest,
} from '../../src/proxy/routing/index.js';
import type { Route } from '../../src/mesh/snapshot.js';
import { route, toCluster } from './fixtures.js';

function req(partial: Partial<RouteRequest> = {}): RouteRequest {
  return { host: 'svc', path: '/', query: '', method: 'GET', scheme: 'http', port: 80, headers: {}, ...partial };
}

function table(routes: Route[], domains = ['svc', '*']) {
  return compileRouteTable({ name: 'outbound', virtualHosts: [{ name: 'vh', domains, routes }] });
}

function routed(routes: Route[], r: Partial<RouteRequest>): string | undefined {
  return matchRoute(table(routes), req(r))?.route.name;
}

describe('route matching', () => {
  it('matches uri exact, prefix, regex and ignoreUriCase', () => {
    const routes = [
      route({ name: 'exact', match: [{ uri: { exact: '/login' } }], action: toCluster('a') }),
      route({ name: 'prefix-ci', match: [{ uri: { prefix: '/API/' }, ignoreUriCase: true }], action: toCluster('a') }),
      route({ name: 'regex', match: [{ uri: { regex: '/items/\\d+' } }], action: toCluster('a') }),
    ];
    expect(routed(routes, { path: '/login' })).toBe('exact');
    expect(routed(routes, { path: '/login/x' })).toBeUndefined();
    expect(routed(routes, { path: '/api/v1' })).toBe('prefix-ci');
    expect(routed(routes, { path: '/items/42' })).toBe('regex');
    // Envoy's regex is a full match.
    expect(routed(routes, { path: '/items/42/x' })).toBeUndefined();
  });

  it('matches headers exact/prefix/regex/present and withoutHeaders', () => {
    const routes = [
      route({ name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }], action: toCluster('v2') }),
      route({ name: 'prefix', match: [{ headers: { 'x-p': { prefix: 'ab' } } }], action: toCluster('v2') }),
      route({ name: 'regex', match: [{ headers: { 'x-r': { regex: '\\d+' } } }], action: toCluster('v2') }),
      route({ name: 'present', match: [{ headers: { 'x-present': { present: true } } }], action: toCluster('v2') }),
      route({ name: 'without', match: [{ withoutHeaders: { 'x-block': { present: true } } }], action: toCluster('v3') }),
    ];
    expect(routed(routes, { headers: { 'end-user': 'jason' } })).toBe('jason');
    expect(routed(routes, { headers: { 'x-p': 'abc' } })).toBe('prefix');
    expect(routed(routes, { headers: { 'x-r': '123' } })).toBe('regex');
    expect(routed(routes, { headers: { 'x-r': 'a123', 'x-block': '1' } })).toBeUndefined();
    expect(routed(routes, { headers: { 'x-present': '' } })).toBe('present');
    expect(routed(routes, { headers: {} })).toBe('without');
  });

  it('matches queryParams, method, authority, scheme and port', () => {
    const routes = [
      route({ name: 'q', match: [{ queryParams: { id: { regex: '\\d+$' } } }], action: toCluster('a') }),
      route({ name: 'qe', match: [{ queryParams: { flag: { exact: '' } } }], action: toCluster('a') }),
      route({ name: 'm', match: [{ method: { exact: 'POST' } }], action: toCluster('a') }),
      route({ name: 'auth', match: [{ authority: { prefix: 'svc:9' } }], action: toCluster('a') }),
      route({ name: 'scheme', match: [{ scheme: { exact: 'https' } }], action: toCluster('a') }),
      route({ name: 'port', match: [{ port: 8080 }], action: toCluster('a') }),
    ];
    expect(routed(routes, { query: 'id=123' })).toBe('q');
    expect(routed(routes, { query: 'id=a123' })).toBeUndefined();
    expect(routed(routes, { query: 'flag' })).toBe('qe');
    expect(routed(routes, { method: 'POST' })).toBe('m');
    expect(routed(routes, { host: 'svc:9000' })).toBe('auth');
    expect(routed(routes, { scheme: 'https' })).toBe('scheme');
    expect(routed(routes, { port: 8080 })).toBe('port');
  });

  it('ORs across match blocks, ANDs within, and the first matching route wins', () => {
    const routes = [
      route({
        name: 'and',
        match: [{ uri: { prefix: '/a' }, headers: { x: { exact: '1' } } }, { uri: { exact: '/or' } }],
        action: toCluster('a'),
      }),
      route({ name: 'catch-all', action: toCluster('b') }),
      route({ name: 'unreachable', action: toCluster('c') }),
    ];
    expect(routed(routes, { path: '/a', headers: { x: '1' } })).toBe('and');
    expect(routed(routes, { path: '/a' })).toBe('catch-all');
    expect(routed(routes, { path: '/or' })).toBe('and');
  });

  it('selects virtual hosts: exact, with port, wildcard suffix, then *', () => {
    const t = compileRouteTable({
      name: 'outbound',
      virtualHosts: [
        { name: 'reviews', domains: ['reviews', 'reviews:9080'], routes: [route({ name: 'reviews', action: toCluster('r') })] },
        { name: 'wild', domains: ['*.example.com'], routes: [route({ name: 'wild', action: toCluster('w') })] },
        { name: 'all', domains: ['*'], routes: [route({ name: 'all', action: toCluster('x') })] },
      ],
    });
    expect(matchRoute(t, req({ host: 'reviews:9080' }))?.route.name).toBe('reviews');
    expect(matchRoute(t, req({ host: 'reviews:1234' }))?.route.name).toBe('reviews');
    expect(matchRoute(t, req({ host: 'a.example.com' }))?.route.name).toBe('wild');
    expect(matchRoute(t, req({ host: 'other' }))?.route.name).toBe('all');
    const noAny = compileRouteTable({ name: 'o', virtualHosts: [{ name: 'r', domains: ['reviews'], routes: [] }] });
    expect(matchRoute(noAny, req({ host: 'nope' }))).toBeUndefined();
  });

  it('refuses an invalid regex at compile time, naming the route', () => {
    expect(() => table([route({ name: 'bad', match: [{ uri: { regex: '(' } }], action: toCluster('a') })])).toThrow(/bad/);
  });
});

describe('weighted destinations', () => {
  it('picks by relative weight with an injected random source; weight 0 gets nothing', () => {
    const r = table([
      route({
        name: 'split',
        action: {
          kind: 'route',
          destinations: [
            { cluster: 'a', weight: 1 },
            { cluster: 'zero', weight: 0 },
            { cluster: 'b', weight: 3 },
          ],
        },
      }),
    ]).any!.routes[0];
    expect(pickDestination(r, () => 0).cluster).toBe('a');
    expect(pickDestination(r, () => 0.24).cluster).toBe('a');
    expect(pickDestination(r, () => 0.25).cluster).toBe('b');
    expect(pickDestination(r, () => 0.999).cluster).toBe('b');
    let seed = 7;
    const rng = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    let b = 0;
    for (let i = 0; i < 10000; i++) if (pickDestination(r, rng).cluster === 'b') b++;
    expect(b / 10000).toBeGreaterThan(0.72);
    expect(b / 10000).toBeLessThan(0.78);
  });
});

describe('rewrite and redirect', () => {
  it('replaces the matched prefix, the whole path for exact, and applies regex rewrites with capture groups', () => {
    const t = table([
      route({ name: 'p', match: [{ uri: { prefix: '/old' } }], action: toCluster('a'), rewrite: { uri: '/new' } }),
      route({ name: 'e', match: [{ uri: { exact: '/x' } }], action: toCluster('a'), rewrite: { uri: '/y' } }),
      route({
        name: 'rx',
        match: [{ uri: { prefix: '/v1' } }],
        action: toCluster('a'),
        rewrite: { uriRegex: { match: '^/v1/(\\w+)/(\\d+)', rewrite: '/\\2/\\1' } },
      }),
    ]);
    const go = (path: string, query = '') => {
      const d = matchRoute(t, req({ path, query }))!;
      return rewritePath(d.route, d.match, path, query);
    };
    expect(go('/old/thing', 'a=1')).toBe('/new/thing?a=1');
    expect(go('/x')).toBe('/y');
    expect(go('/v1/items/42')).toBe('/42/items');
  });

  it('builds redirect locations: uri, prefixRewrite, authority, port, derivePort, scheme', () => {
    const mk = (redirect: Route['action'] & { kind: 'redirect' }, match: Route['match'] = [{ uri: { prefix: '/a' } }]) =>
      table([route({ name: 'r', match, action: redirect })]);
    const loc = (t: ReturnType<typeof table>, r: Partial<RouteRequest>) => {
      const d = matchRoute(t, req(r))!;
      return redirectLocation(d.route, d.match, req(r));
    };
    expect(loc(mk({ kind: 'redirect', redirect: { uri: '/b', code: 301 } }), { path: '/a/x', query: 'q=1' })).toBe('http://svc/b?q=1');
    expect(loc(mk({ kind: 'redirect', redirect: { prefixRewrite: '/z', code: 301 } }), { path: '/a/x' })).toBe('http://svc/z/x');
    expect(loc(mk({ kind: 'redirect', redirect: { authority: 'other', port: 8443, scheme: 'https', code: 302 } }), { path: '/a' })).toBe(
      'https://other:8443/a',
    );
    expect(loc(mk({ kind: 'redirect', redirect: { scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT', code: 301 } }), { path: '/a', host: 'svc:8080' })).toBe(
      'https://svc/a',
    );
    expect(loc(mk({ kind: 'redirect', redirect: { derivePort: 'FROM_REQUEST_PORT', code: 301 } }), { path: '/a', port: 9080 })).toBe(
      'http://svc:9080/a',
    );
  });
});

describe('headers and CORS', () => {
  it('removes, then sets, then appends', () => {
    const h: Record<string, string | string[] | undefined> = { a: '1', b: '2', c: '3' };
    applyHeaderOps(h, compileHeaderOps({ remove: ['A'], set: { B: 'x' }, add: { C: 'y', D: 'z' } }));
    expect(h).toEqual({ b: 'x', c: '3, y', d: 'z' });
  });

  it('answers matched preflights, forwards or ignores unmatched ones, decorates simple requests', () => {
    const base = {
      allowOrigins: [{ exact: 'https://ok.example' }, { regex: 'https://.*\\.trusted' }],
      allowMethods: ['GET', 'POST'],
      allowHeaders: ['x-a'],
      exposeHeaders: ['x-e'],
      maxAgeSeconds: 60,
      allowCredentials: true,
    };
    const fwd = compileCors({ ...base, unmatchedPreflights: 'FORWARD' })!;
    const ign = compileCors({ ...base, unmatchedPreflights: 'IGNORE' })!;
    expect(evaluateCors(fwd, 'OPTIONS', 'https://a.trusted', 'POST')).toEqual({
      kind: 'preflight',
      headers: {
        'access-control-allow-origin': 'https://a.trusted',
        'access-control-allow-methods': 'GET,POST',
        'access-control-allow-headers': 'x-a',
        'access-control-max-age': '60',
        'access-control-allow-credentials': 'true',
      },
    });
    expect(evaluateCors(fwd, 'OPTIONS', 'https://evil', 'POST')).toEqual({ kind: 'forward' });
    expect(evaluateCors(ign, 'OPTIONS', 'https://evil', 'POST')).toEqual({ kind: 'preflight', headers: {} });
    expect(evaluateCors(fwd, 'GET', 'https://ok.example', undefined)).toEqual({
      kind: 'forward',
      responseHeaders: {
        'access-control-allow-origin': 'https://ok.example',
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': 'x-e',
      },
    });
  });
});

describe('RE2 syntax', () => {
  it('accepts inline flags and RE2-only syntax (re2js fallback) for matches and rewrites', () => {
    const t = table([
      route({ name: 'ci', match: [{ uri: { regex: '(?i)/admin/.*' } }], action: toCluster('a') }),
      route({ name: 'named', match: [{ headers: { 'x-v': { regex: '(?P<major>\\d+)\\.\\d+' } } }], action: toCluster('a') }),
      route({ name: 'rw', match: [{ uri: { prefix: '/r' } }], action: toCluster('a'), rewrite: { uriRegex: { match: '(?i)^/R/(\\w+)', rewrite: '/x/\\1' } } }),
    ]);
    expect(matchRoute(t, req({ path: '/ADMIN/users' }))?.route.name).toBe('ci');
    expect(matchRoute(t, req({ path: '/z', headers: { 'x-v': '12.3' } }))?.route.name).toBe('named');
    const d = matchRoute(t, req({ path: '/r/abc' }))!;
    expect(rewritePath(d.route, d.match, '/r/abc', '')).toBe('/x/abc');
  });
});

describe('request targets', () => {
  it('parses absolute-form targets, Host ports and host:port authorities', async () => {
    const { parseAbsoluteForm, hostPort, splitHostPort } = await import('../../src/proxy/http/request-target.js');
    expect(parseAbsoluteForm('http://ratings:9080/r/1?x=2')).toEqual({ authority: 'ratings:9080', path: '/r/1?x=2' });
    expect(parseAbsoluteForm('http://ratings')).toEqual({ authority: 'ratings', path: '/' });
    expect(parseAbsoluteForm('http://ratings?x=1')).toEqual({ authority: 'ratings', path: '/?x=1' });
    expect(parseAbsoluteForm('/plain')).toBeUndefined();
    expect(hostPort('svc:8080', 'http')).toBe(8080);
    expect(hostPort('svc', 'https')).toBe(443);
    expect(splitHostPort('[::1]:9000', 80)).toEqual({ address: '::1', port: 9000 });
    expect(splitHostPort('example.com', 80)).toEqual({ address: 'example.com', port: 80 });
  });
});
