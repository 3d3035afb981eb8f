import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';
import type { JwtRuleSnapshot } from '../../src/mesh/snapshot.js';
import { authenticateRequest, RequestAuthenticator } from '../../src/security/jwt/authenticate.js';
import { closeServer, listen } from './helpers/mesh.js';

const ISSUER = 'https://issuer.example';
let signingKey: CryptoKey;
let otherKey: CryptoKey;
let rotatedKey: CryptoKey;
let jwk: JWK;
let rotatedJwk: JWK;
let server: Server;
let jwksUri: string;
let slowUri: string;
let jwksHits = 0;
let serveRotated = false;

function rule(overrides: Partial<JwtRuleSnapshot> = {}): JwtRuleSnapshot {
  return {
    policy: 'shop/jwt',
    issuer: ISSUER,
    audiences: [],
    jwks: JSON.stringify({ keys: [jwk] }),
    fromHeaders: [],
    fromParams: [],
    fromCookies: [],
    forwardOriginalToken: false,
    outputClaimToHeaders: [],
    timeoutMs: 5000,
    ...overrides,
  };
}

async function token(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; kid?: string; expiresIn?: string | number } = {}): Promise<string> {
  return new SignJWT({ sub: 'alice', aud: 'shop-api', groups: ['admin'], org: { team: 'core' }, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'k1' })
    .setIssuer((claims.iss as string | undefined) ?? ISSUER)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
    .sign(options.key ?? signingKey);
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

beforeAll(async () => {
  const main = await generateKeyPair('RS256');
  signingKey = main.privateKey;
  jwk = { ...(await exportJWK(main.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  otherKey = (await generateKeyPair('RS256')).privateKey;
  const rotated = await generateKeyPair('RS256');
  rotatedKey = rotated.privateKey;
  rotatedJwk = { ...(await exportJWK(rotated.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' };
  server = createServer((req, res) => {
    if (req.url === '/slow') return; // never answers: exercises the fetch timeout
    jwksHits += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: serveRotated ? [jwk, rotatedJwk] : [jwk] }));
  });
  const port = await listen(server);
  jwksUri = `http://127.0.0.1:${port}/jwks.json`;
  slowUri = `http://127.0.0.1:${port}/slow`;
});
afterAll(() => closeServer(server));

describe('RequestAuthentication', () => {
  it('accepts a valid token: principal iss/sub, claims, token header removed', async () => {
    const result = await authenticateRequest([rule()], bearer(await token()));
    expect(result).toMatchObject({ ok: true, principal: `${ISSUER}/alice`, headersToRemove: ['authorization'], headersToSet: {} });
    expect(result.ok && result.claims?.groups).toEqual(['admin']);
  });

  it('rejects expired, wrong-issuer, wrong-audience, badly signed and malformed tokens with 401', async () => {
    const cases: Array<[string, Promise<string> | string, Partial<JwtRuleSnapshot>]> = [
      ['Jwt is expired', token({}, { expiresIn: Math.floor(Date.now() / 1000) - 3600 }), {}],
      ['Jwt issuer is not configured', token({ iss: 'https://evil.example' }), {}],
      ['Audiences in Jwt are not allowed', token(), { audiences: ['billing-api'] }],
      ['Jwt verification fails', token({}, { key: otherKey }), {}],
      ['Jwt is not in the form of Header.Payload.Signature', 'not-a-jwt', {}],
    ];
    for (const [message, pending, overrides] of cases) {
      const result = await authenticateRequest([rule(overrides)], bearer(await pending));
      expect({ message, result }).toEqual({ message, result: { ok: false, status: 401, message, wwwAuthenticate: expect.stringContaining('invalid_token') } });
    }
    expect(await authenticateRequest([rule({ audiences: ['billing-api', 'shop-api'] })], bearer(await token()))).toMatchObject({ ok: true });
  });

  it('passes a request without a token, with no principal (Istio)', async () => {
    const result = await authenticateRequest([rule()], { headers: { 'x-other': '1' } });
    expect(result).toEqual({ ok: true, principal: undefined, claims: undefined, headersToSet: {}, headersToRemove: [] });
  });

  it('reads the token from the default locations, custom headers with prefix, params and cookies', async () => {
    const t = await token();
    expect(await authenticateRequest([rule()], { headers: {}, query: new URLSearchParams({ access_token: t }) })).toMatchObject({
      ok: true,
      principal: `${ISSUER}/alice`,
      headersToRemove: [],
    });
    const custom = rule({ fromHeaders: [{ name: 'X-Jwt', prefix: 'Token ' }], fromParams: ['jwt'], fromCookies: ['session'] });
    expect(await authenticateRequest([custom], { headers: { 'x-jwt': `Token ${t}` } })).toMatchObject({ ok: true, headersToRemove: ['x-jwt'] });
    expect(await authenticateRequest([custom], { headers: {}, query: { jwt: t } })).toMatchObject({ ok: true, principal: `${ISSUER}/alice` });
    expect(await authenticateRequest([custom], { headers: { cookie: `a=b; session=${t}` } })).toMatchObject({ ok: true, principal: `${ISSUER}/alice` });
    // Explicit locations replace the defaults: a bearer header is then not looked at.
    expect(await authenticateRequest([custom], bearer(t))).toEqual({ ok: true, headersToSet: {}, headersToRemove: [] });
  });

  it('forwardOriginalToken keeps the header; outputPayloadToHeader and outputClaimToHeaders set headers', async () => {
    const t = await token();
    const result = await authenticateRequest(
      [rule({ forwardOriginalToken: true, outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [{ header: 'x-team', claim: 'org.team' }, { header: 'x-sub', claim: 'sub' }, { header: 'x-none', claim: 'missing' }] })],
      bearer(t),
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.headersToRemove).toEqual([]);
    expect(result.headersToSet).toEqual({ 'x-jwt-payload': t.split('.')[1], 'x-team': 'core', 'x-sub': 'alice' });
    expect(JSON.parse(Buffer.from(result.headersToSet['x-jwt-payload'], 'base64url').toString())).toMatchObject({ iss: ISSUER, sub: 'alice' });
  });

  it('picks the rule whose issuer signed the token among several', async () => {
    const second = rule({ policy: 'shop/other', issuer: 'https://other.example', jwks: JSON.stringify({ keys: [{ ...jwk }] }) });
    const result = await authenticateRequest([second, rule()], bearer(await token()));
    expect(result).toMatchObject({ ok: true, principal: `${ISSUER}/alice` });
  });
});

describe('jwksUri', () => {
  it('fetches the JWKS once, caches it, and refetches on an unknown kid', async () => {
    const authenticator = new RequestAuthenticator({ jwksCooldownMs: 0 });
    const remote = rule({ jwks: undefined, jwksUri });
    jwksHits = 0;
    expect(await authenticator.authenticate([remote], bearer(await token()))).toMatchObject({ ok: true });
    expect(await authenticator.authenticate([remote], bearer(await token()))).toMatchObject({ ok: true });
    expect(jwksHits).toBe(1);
    serveRotated = true;
    const rotatedToken = await token({}, { key: rotatedKey, kid: 'k2' });
    expect(await authenticator.authenticate([remote], bearer(rotatedToken))).toMatchObject({ ok: true, principal: `${ISSUER}/alice` });
    expect(jwksHits).toBe(2);
    serveRotated = false;
  });

  it('times out a JWKS fetch and answers 401', async () => {
    const authenticator = new RequestAuthenticator();
    const result = await authenticator.authenticate([rule({ jwks: undefined, jwksUri: slowUri, timeoutMs: 300 })], bearer(await token()));
    expect(result).toMatchObject({ ok: false, status: 401, message: 'Jwks remote fetch is failed' });
  });
});
