import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AuthorizationPolicyRef, ExtensionProvider } from '../../src/mesh/snapshot.js';
import { authorizeRequest } from '../../src/security/authz/authorize.js';
import { checkExternalAuthz } from '../../src/security/authz/ext-authz.js';
import { closeServer, listen } from './helpers/mesh.js';

/** An ext-authz service like Istio's sample: allows when `x-ext-authz: allow`, hangs for /slow. */
let server: Server;
let port: number;
const seen: Array<{ method?: string; url?: string; headers: IncomingHttpHeaders }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    if (req.url?.includes('/slow')) return; // never answers
    if (req.headers['x-ext-authz'] === 'allow') {
      res.writeHead(200, { 'x-ext-authz-check-result': 'allowed', 'x-user': 'alice', 'x-internal': 'secret' });
      return res.end();
    }
    res.writeHead(401, { 'x-ext-authz-check-result': 'denied', 'www-authenticate': 'Bearer' });
    res.end('denied by ext_authz');
  });
  port = await listen(server);
});
afterAll(() => closeServer(server));

const provider = (overrides: Partial<NonNullable<ExtensionProvider['envoyExtAuthzHttp']>> = {}): ExtensionProvider => ({
  name: 'sample-ext-authz',
  envoyExtAuthzHttp: {
    service: '127.0.0.1',
    port: 0,
    pathPrefix: '/check',
    includeRequestHeadersInCheck: ['x-ext-authz'],
    headersToUpstreamOnAllow: ['x-user'],
    headersToDownstreamOnDeny: ['x-ext-authz-check-result'],
    timeoutMs: 2000,
    ...overrides,
  },
});
const withPort = (p: ExtensionProvider): ExtensionProvider => ({ ...p, envoyExtAuthzHttp: { ...p.envoyExtAuthzHttp!, port } });

describe('checkExternalAuthz', () => {
  it('allows on 2xx, forwarding only the configured headers, and returns headersToUpstreamOnAllow', async () => {
    seen.length = 0;
    const result = await checkExternalAuthz(withPort(provider()), {
      method: 'POST',
      path: '/orders?id=1',
      host: 'shop.local',
      headers: { 'x-ext-authz': 'allow', authorization: 'Bearer t', cookie: 'sid=1', 'x-other': 'no' },
    });
    expect(result).toMatchObject({ allowed: true, headersToUpstream: { 'x-user': 'alice' } });
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe('POST');
    expect(seen[0].url).toBe('/check/orders?id=1');
    expect(seen[0].headers).toMatchObject({ host: 'shop.local', authorization: 'Bearer t', 'x-ext-authz': 'allow', 'content-length': '0' });
    expect(seen[0].headers.cookie).toBeUndefined();
    expect(seen[0].headers['x-other']).toBeUndefined();
  });

  it('denies with the provider status, body and headersToDownstreamOnDeny', async () => {
    const result = await checkExternalAuthz(withPort(provider()), { method: 'GET', path: '/', headers: { 'x-ext-authz': 'deny' } });
    expect(result).toMatchObject({ allowed: false, status: 401, body: 'denied by ext_authz', headersToDownstream: { 'x-ext-authz-check-result': 'denied' } });
  });

  it('times out to 403, or allows when failOpen', async () => {
    const closed = await checkExternalAuthz(withPort(provider({ timeoutMs: 200 })), { method: 'GET', path: '/slow', headers: {} });
    expect(closed).toMatchObject({ allowed: false, status: 403 });
    expect(closed.reason).toMatch(/timeout/);
    const open = await checkExternalAuthz(withPort(provider({ timeoutMs: 200, failOpen: true })), { method: 'GET', path: '/slow', headers: {} });
    expect(open).toMatchObject({ allowed: true });
    const refused = await checkExternalAuthz(provider({ port: 1 }), { method: 'GET', path: '/', headers: {} });
    expect(refused).toMatchObject({ allowed: false, status: 403 });
  });
});

describe('authorizeRequest (CUSTOM, then DENY, then ALLOW)', () => {
  const custom: AuthorizationPolicyRef = { name: 'shop/ext', action: 'CUSTOM', provider: 'sample-ext-authz', rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }] };
  const base = { method: 'GET', path: '/api/x', host: 'shop', port: 8080 };

  it('consults the provider only when a CUSTOM policy matches', async () => {
    seen.length = 0;
    const providers = [withPort(provider())];
    const allowed = await authorizeRequest([custom], { ...base, headers: { 'x-ext-authz': 'allow' } }, providers);
    expect(allowed).toMatchObject({ allowed: true, headersToUpstream: { 'x-user': 'alice' } });
    const denied = await authorizeRequest([custom], { ...base, headers: { 'x-ext-authz': 'no' } }, providers);
    expect(denied).toMatchObject({ allowed: false, status: 401, body: 'denied by ext_authz' });
    const notMatched = await authorizeRequest([custom], { ...base, path: '/public', headers: {} }, providers);
    expect(notMatched).toMatchObject({ allowed: true });
    expect(seen).toHaveLength(2);
  });

  it('a DENY policy answers 403 RBAC: access denied; the provider denial comes first; an unknown provider fails closed', async () => {
    const deny: AuthorizationPolicyRef = { name: 'shop/deny', action: 'DENY', rules: [{}] };
    const denied = await authorizeRequest([custom, deny], { ...base, headers: { 'x-ext-authz': 'allow' } }, [withPort(provider())]);
    expect(denied).toMatchObject({ allowed: false, status: 403, body: 'RBAC: access denied' });
    const providerFirst = await authorizeRequest([custom, deny], { ...base, headers: { 'x-ext-authz': 'no' } }, [withPort(provider())]);
    expect(providerFirst).toMatchObject({ allowed: false, status: 401, body: 'denied by ext_authz' });
    expect(await authorizeRequest([deny], { ...base, headers: {} }, [])).toMatchObject({ allowed: false, status: 403 });
    const unknown = await authorizeRequest([custom], { ...base, headers: {} }, []);
    expect(unknown).toMatchObject({ allowed: false, status: 403 });
  });
});
