import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { JwtRuleSnapshot } from '../../mesh/snapshot.js';

/** Envoy jwt_authn's default clock skew allowance. */
export const JWT_CLOCK_SKEW_SECONDS = 60;
/** Istio's default JWKS fetch timeout. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;
/** Envoy's default JWKS cache duration (remote_jwks.cache_duration). */
export const DEFAULT_JWKS_CACHE_MS = 5 * 60 * 1000;
/** Bounds a token before any parsing. */
const MAX_TOKEN_BYTES = 16 * 1024;

export interface AuthnRequest {
  /** Lower-case header names (node's IncomingMessage.headers). */
  headers: Record<string, string | string[] | undefined>;
  query?: URLSearchParams | Record<string, string | string[] | undefined>;
}

export type AuthnResult =
  | {
      ok: true;
      /** `<iss>/<sub>` of the verified token; absent when no token was presented (Istio: not an error). */
      principal?: string;
      claims?: JWTPayload;
      /** outputPayloadToHeader / outputClaimToHeaders, to set on the upstream request. */
      headersToSet: Record<string, string>;
      /** Token headers to strip before forwarding (forwardOriginalToken false). */
      headersToRemove: string[];
    }
  | {
      ok: false;
      status: 401;
      /** Envoy's message, e.g. `Jwt is expired`, also the response body. */
      message: string;
      /** Value for the `www-authenticate` response header. */
      wwwAuthenticate: string;
    };

type Location = { kind: 'header'; name: string; prefix: string } | { kind: 'param'; name: string } | { kind: 'cookie'; name: string };

/** Istio's defaults when a rule lists no location: `Authorization: Bearer <t>`, then `?access_token=`. */
const DEFAULT_LOCATIONS: Location[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];

function locationsOf(rule: JwtRuleSnapshot): Location[] {
  const explicit: Location[] = [
    ...rule.fromHeaders.map((h): Location => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix ?? '' })),
    ...rule.fromParams.map((name): Location => ({ kind: 'param', name })),
    ...rule.fromCookies.map((name): Location => ({ kind: 'cookie', name })),
  ];
  return explicit.length > 0 ? explicit : DEFAULT_LOCATIONS;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function queryValue(query: AuthnRequest['query'], name: string): string | undefined {
  if (!query) return undefined;
  if (query instanceof URLSearchParams) return query.get(name) ?? undefined;
  return first(query[name]);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function extract(req: AuthnRequest, location: Location): string | undefined {
  switch (location.kind) {
    case 'header': {
      const value = first(req.headers[location.name]);
      if (value === undefined) return undefined;
      if (!location.prefix) return value.trim() || undefined;
      // Envoy matches the prefix case-sensitively except for the conventional `Bearer `.
      const head = value.slice(0, location.prefix.length);
      const matches = location.prefix === 'Bearer ' ? head.toLowerCase() === 'bearer ' : head === location.prefix;
      return matches ? value.slice(location.prefix.length).trim() || undefined : undefined;
    }
    case 'param':
      return queryValue(req.query, location.name);
    case 'cookie':
      return cookieValue(first(req.headers.cookie), location.name);
  }
}

function claimAt(payload: JWTPayload, path: string): string | undefined {
  let node: unknown = payload;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return ['string', 'number', 'boolean'].includes(typeof node) ? String(node) : undefined;
}

function failure(message: string): AuthnResult {
  return { ok: false, status: 401, message, wwwAuthenticate: `Bearer realm="trellis", error="invalid_token"` };
}

/** Maps jose errors to Envoy jwt_authn's status messages. */
function messageFor(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'Jwt is expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'Audiences in Jwt are not allowed';
    if (error.claim === 'iss') return 'Jwt issuer is not configured';
    if (error.claim === 'nbf') return 'Jwt not yet valid';
    return 'Jwt verification fails';
  }
  if (error instanceof joseErrors.JWKSTimeout) return 'Jwks remote fetch is failed';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'Jwt verification fails';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'Jwt verification fails';
  if (error instanceof joseErrors.JWKSInvalid || error instanceof joseErrors.JWKInvalid) return 'Jwks is invalid';
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid) return 'Jwt is not in the form of Header.Payload.Signature';
  if (error instanceof Error && /fetch|ECONNREFUSED|Expected 200/i.test(error.message)) return 'Jwks remote fetch is failed';
  return 'Jwt verification fails';
}

export interface RequestAuthenticatorOptions {
  /** Minimum time between JWKS refetches triggered by an unknown `kid` (jose cooldown); default 30 s. */
  jwksCooldownMs?: number;
  /** How long a fetched JWKS is trusted before a refetch; default 5 min (Envoy). */
  jwksCacheMs?: number;
}

/**
 * RequestAuthentication for one proxy. Holds the JWKS caches (per jwksUri and timeout, refetched
 * on an unknown kid after the cooldown), so keep one instance per process.
 */
export class RequestAuthenticator {
  private readonly remote = new Map<string, JWTVerifyGetKey>();
  private readonly local = new WeakMap<JwtRuleSnapshot, JWTVerifyGetKey | Error>();

  constructor(private readonly options: RequestAuthenticatorOptions = {}) {}

  private keysFor(rule: JwtRuleSnapshot): JWTVerifyGetKey | Error {
    if (rule.jwks !== undefined) {
      let keys = this.local.get(rule);
      if (!keys) {
        try {
          keys = createLocalJWKSet(JSON.parse(rule.jwks));
        } catch (error) {
          keys = new joseErrors.JWKSInvalid(`inline jwks of ${rule.policy}: ${(error as Error).message}`);
        }
        this.local.set(rule, keys);
      }
      return keys;
    }
    if (!rule.jwksUri) return new joseErrors.JWKSInvalid(`rule ${rule.policy} has neither jwks nor jwksUri`);
    const timeoutMs = rule.timeoutMs || DEFAULT_JWKS_TIMEOUT_MS;
    const cacheKey = `${rule.jwksUri}|${timeoutMs}`;
    let keys = this.remote.get(cacheKey);
    if (!keys) {
      keys = createRemoteJWKSet(new URL(rule.jwksUri), {
        timeoutDuration: timeoutMs,
        cooldownDuration: this.options.jwksCooldownMs ?? 30_000,
        cacheMaxAge: this.options.jwksCacheMs ?? DEFAULT_JWKS_CACHE_MS,
      });
      this.remote.set(cacheKey, keys);
    }
    return keys;
  }

  /**
   * Verifies the JWTs a request carries against the proxy's rules. No token ⇒ ok without a
   * principal (Istio); any presented token that fails ⇒ 401.
   */
  async authenticate(rules: JwtRuleSnapshot[], req: AuthnRequest): Promise<AuthnResult> {
    const headersToSet: Record<string, string> = {};
    const headersToRemove = new Set<string>();
    // token ⇒ rules whose locations yielded it (and the headers it came from)
    const found = new Map<string, { rules: JwtRuleSnapshot[]; headers: string[] }>();
    for (const rule of rules) {
      for (const location of locationsOf(rule)) {
        const token = extract(req, location);
        if (!token) continue;
        const entry = found.get(token) ?? { rules: [], headers: [] };
        if (!entry.rules.includes(rule)) entry.rules.push(rule);
        if (location.kind === 'header') entry.headers.push(location.name);
        found.set(token, entry);
      }
    }
    if (found.size === 0) return { ok: true, headersToSet, headersToRemove: [] };

    let principal: string | undefined;
    let claims: JWTPayload | undefined;
    for (const [token, entry] of found) {
      if (token.length > MAX_TOKEN_BYTES) return failure('Jwt verification fails');
      let unverifiedIssuer: string | undefined;
      try {
        unverifiedIssuer = decodeJwt(token).iss;
      } catch {
        return failure('Jwt is not in the form of Header.Payload.Signature');
      }
      const rule = entry.rules.find((candidate) => candidate.issuer === unverifiedIssuer);
      if (!rule) return failure('Jwt issuer is not configured');
      const keys = this.keysFor(rule);
      if (keys instanceof Error) return failure(messageFor(keys));
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: rule.issuer,
          ...(rule.audiences.length > 0 ? { audience: rule.audiences } : {}),
          clockTolerance: JWT_CLOCK_SKEW_SECONDS,
        }));
      } catch (error) {
        return failure(messageFor(error));
      }
      if (principal === undefined) {
        principal = `${payload.iss}/${payload.sub ?? ''}`;
        claims = payload;
      }
      if (!rule.forwardOriginalToken) for (const header of entry.headers) headersToRemove.add(header);
      if (rule.outputPayloadToHeader) headersToSet[rule.outputPayloadToHeader.toLowerCase()] = token.split('.')[1];
      for (const { header, claim } of rule.outputClaimToHeaders) {
        const value = claimAt(payload, claim);
        if (value !== undefined) headersToSet[header.toLowerCase()] = value;
      }
    }
    return { ok: true, principal, claims, headersToSet, headersToRemove: [...headersToRemove] };
  }
}

const defaultAuthenticator = new RequestAuthenticator();

/** authenticate() on a process-wide RequestAuthenticator (shared JWKS cache). */
export function authenticateRequest(rules: JwtRuleSnapshot[], req: AuthnRequest): Promise<AuthnResult> {
  return defaultAuthenticator.authenticate(rules, req);
}
