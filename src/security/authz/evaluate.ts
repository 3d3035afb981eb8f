import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../../mesh/api/security.js';
import type { AuthorizationPolicyRef } from '../../mesh/snapshot.js';
import { parseSpiffeId } from '../identity.js';
import { compileCidrs } from './ip-match.js';
import { anyOf, compileHostMatch, compilePathMatch, compileStringMatch, type ValueMatcher } from './string-match.js';
import type { AuthzDecision, AuthzRequest } from './types.js';

/**
 * AuthorizationPolicy evaluation, pure (ISTIO-SEMANTICS §1.5): CUSTOM, then DENY, then ALLOW;
 * AUDIT never changes the decision; no ALLOW policy ⇒ allow; an ALLOW policy without rules matches
 * nothing; `rules: [{}]` matches everything. A policy matches when ≥1 rule matches; a rule matches
 * when (any from) AND (any to) AND (all when); within a source/operation all set fields must match.
 */

interface Check {
  /** Uses request-level (HTTP) data; see AuthzRequest.protocol. */
  http: boolean;
  /** Unknown condition key: never matches in ALLOW-like policies, always in DENY (fail closed). */
  unknown?: boolean;
  test(req: AuthzRequest): boolean;
}

interface CompiledRule {
  from: Check[][];
  to: Check[][];
  when: Check[];
}

interface CompiledPolicy {
  ref: AuthorizationPolicyRef;
  rules: CompiledRule[];
}

export interface CompiledAuthorization {
  custom: CompiledPolicy[];
  deny: CompiledPolicy[];
  allow: CompiledPolicy[];
  audit: CompiledPolicy[];
  dryRun: CompiledPolicy[];
}

function headerValue(req: AuthzRequest, name: string): string | undefined {
  const value = req.headers?.[name.toLowerCase()];
  return Array.isArray(value) ? value.join(',') : value;
}

function pathOf(req: AuthzRequest): string | undefined {
  if (req.path === undefined) return undefined;
  const query = req.path.indexOf('?');
  return query === -1 ? req.path : req.path.slice(0, query);
}

function namespaceOf(req: AuthzRequest): string | undefined {
  return req.sourceNamespace ?? (req.sourcePrincipal ? parseSpiffeId(req.sourcePrincipal)?.namespace : undefined);
}

function serviceAccountOf(req: AuthzRequest): string | undefined {
  const id = req.sourcePrincipal ? parseSpiffeId(req.sourcePrincipal) : undefined;
  return id ? `${id.namespace}/${id.serviceAccount}` : undefined;
}

/** A positive field (`principals`) and its negation (`notPrincipals`) over one request attribute. */
function fieldChecks(
  values: string[] | undefined,
  notValues: string[] | undefined,
  compile: (pattern: string) => ValueMatcher,
  read: (req: AuthzRequest) => string | undefined,
  http: boolean,
): Check[] {
  const checks: Check[] = [];
  if (values && values.length > 0) {
    const match = anyOf(values.map(compile));
    checks.push({ http, test: (req) => match(read(req)) });
  }
  if (notValues && notValues.length > 0) {
    const match = anyOf(notValues.map(compile));
    checks.push({ http, test: (req) => !match(read(req)) });
  }
  return checks;
}

function cidrChecks(values: string[] | undefined, notValues: string[] | undefined, read: (req: AuthzRequest) => string | undefined): Check[] {
  const checks: Check[] = [];
  if (values && values.length > 0) {
    const cidrs = compileCidrs(values);
    checks.push({ http: false, test: (req) => cidrs.matches(read(req)) });
  }
  if (notValues && notValues.length > 0) {
    const cidrs = compileCidrs(notValues);
    checks.push({ http: false, test: (req) => !cidrs.matches(read(req)) });
  }
  return checks;
}

const exact = (pattern: string) => compileStringMatch(pattern);
const remoteIpOf = (req: AuthzRequest) => req.remoteIp ?? req.sourceIp;

function compileSource(source: AuthzSource): Check[] {
  return [
    ...fieldChecks(source.principals, source.notPrincipals, exact, (req) => req.sourcePrincipal, false),
    ...fieldChecks(source.requestPrincipals, source.notRequestPrincipals, exact, (req) => req.requestPrincipal, true),
    ...fieldChecks(source.namespaces, source.notNamespaces, exact, namespaceOf, false),
    ...fieldChecks(source.serviceAccounts, source.notServiceAccounts, exact, serviceAccountOf, false),
    ...cidrChecks(source.ipBlocks, source.notIpBlocks, (req) => req.sourceIp),
    ...cidrChecks(source.remoteIpBlocks, source.notRemoteIpBlocks, remoteIpOf),
  ];
}

function compileOperation(operation: AuthzOperation): Check[] {
  return [
    ...fieldChecks(operation.hosts, operation.notHosts, compileHostMatch, (req) => req.host, true),
    ...fieldChecks(operation.ports, operation.notPorts, (port) => (value) => value === String(port).trim(), (req) => String(req.port), false),
    ...fieldChecks(operation.methods, operation.notMethods, exact, (req) => req.method, true),
    ...fieldChecks(operation.paths, operation.notPaths, compilePathMatch, pathOf, true),
  ];
}

/** `request.auth.claims[a][b]` ⇒ ['a', 'b']. */
function claimPath(key: string): string[] | undefined {
  const rest = key.slice('request.auth.claims'.length);
  const parts = [...rest.matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]);
  return parts.length > 0 && parts.map((p) => `[${p}]`).join('') === rest ? parts : undefined;
}

/** A claim's values as strings: arrays give each element; scalars give one. */
function claimValues(claims: Record<string, unknown> | undefined, path: string[]): string[] {
  let node: unknown = claims;
  for (const part of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return [];
    node = (node as Record<string, unknown>)[part];
  }
  const list = Array.isArray(node) ? node : [node];
  return list.filter((v) => ['string', 'number', 'boolean'].includes(typeof v)).map(String);
}

/** Each supported `when` key: whether it is HTTP-level and how to read its value(s). */
function conditionReader(key: string): { http: boolean; cidr?: boolean; read: (req: AuthzRequest) => string[] } | undefined {
  const one = (value: string | undefined) => (value === undefined ? [] : [value]);
  const header = /^request\.headers\[(.+)\]$/.exec(key);
  if (header) return { http: true, read: (req) => one(headerValue(req, header[1])) };
  if (key.startsWith('request.auth.claims')) {
    const path = claimPath(key);
    return path ? { http: true, read: (req) => claimValues(req.claims, path) } : undefined;
  }
  switch (key) {
    case 'source.ip':
      return { http: false, cidr: true, read: (req) => one(req.sourceIp) };
    case 'remote.ip':
      return { http: false, cidr: true, read: (req) => one(remoteIpOf(req)) };
    case 'destination.ip':
      return { http: false, cidr: true, read: (req) => one(req.destinationIp) };
    case 'destination.port':
      return { http: false, read: (req) => [String(req.port)] };
    case 'source.namespace':
      return { http: false, read: (req) => one(namespaceOf(req)) };
    case 'source.principal':
      return { http: false, read: (req) => one(req.sourcePrincipal) };
    case 'source.serviceAccount':
      return { http: false, read: (req) => one(serviceAccountOf(req)) };
    case 'connection.sni':
      return { http: false, read: (req) => one(req.sni) };
    case 'request.auth.principal':
      return { http: true, read: (req) => one(req.requestPrincipal) };
    case 'request.auth.audiences':
      return { http: true, read: (req) => claimValues(req.claims, ['aud']) };
    case 'request.auth.presenter':
      return { http: true, read: (req) => claimValues(req.claims, ['azp']) };
    default:
      return undefined;
  }
}

function compileCondition(condition: AuthzCondition): Check[] {
  const reader = conditionReader(condition.key);
  if (!reader) return [{ http: false, unknown: true, test: () => false }];
  const compile = (values: string[]) => {
    if (reader.cidr) {
      const cidrs = compileCidrs(values);
      return (value: string) => cidrs.matches(value);
    }
    const matcher = anyOf(values.map((v) => compileStringMatch(v)));
    return (value: string) => matcher(value);
  };
  const checks: Check[] = [];
  if (condition.values && condition.values.length > 0) {
    const match = compile(condition.values);
    checks.push({ http: reader.http, test: (req) => reader.read(req).some(match) });
  }
  if (condition.notValues && condition.notValues.length > 0) {
    const match = compile(condition.notValues);
    checks.push({ http: reader.http, test: (req) => !reader.read(req).some(match) });
  }
  return checks;
}

function compileRule(rule: AuthzRule): CompiledRule {
  return {
    from: (rule.from ?? []).map((entry) => compileSource(entry.source ?? {})),
    to: (rule.to ?? []).map((entry) => compileOperation(entry.operation ?? {})),
    when: (rule.when ?? []).flatMap(compileCondition),
  };
}

/** Compiles a proxy's policies once (per snapshot); evaluateAuthorization caches this per array. */
export function compileAuthorization(policies: AuthorizationPolicyRef[]): CompiledAuthorization {
  const compiled: CompiledAuthorization = { custom: [], deny: [], allow: [], audit: [], dryRun: [] };
  for (const ref of policies) {
    const policy = { ref, rules: (ref.rules ?? []).map(compileRule) };
    if (ref.dryRun) compiled.dryRun.push(policy);
    else if (ref.action === 'CUSTOM') compiled.custom.push(policy);
    else if (ref.action === 'DENY') compiled.deny.push(policy);
    else if (ref.action === 'AUDIT') compiled.audit.push(policy);
    else compiled.allow.push(policy);
  }
  return compiled;
}

function checksPass(checks: Check[], req: AuthzRequest, denyLike: boolean): boolean {
  const tcp = req.protocol === 'tcp';
  for (const check of checks) {
    if (check.unknown) {
      if (!denyLike) return false;
      continue;
    }
    if (tcp && check.http) {
      // HTTP-only fields on a TCP connection: ALLOW cannot be satisfied; DENY ignores the field.
      if (!denyLike) return false;
      continue;
    }
    if (!check.test(req)) return false;
  }
  return true;
}

function ruleMatches(rule: CompiledRule, req: AuthzRequest, denyLike: boolean): boolean {
  const anyList = (lists: Check[][]) => lists.length === 0 || lists.some((checks) => checksPass(checks, req, denyLike));
  return anyList(rule.from) && anyList(rule.to) && checksPass(rule.when, req, denyLike);
}

function policyMatches(policy: CompiledPolicy, req: AuthzRequest): boolean {
  const denyLike = policy.ref.action === 'DENY';
  return policy.rules.some((rule) => ruleMatches(rule, req, denyLike));
}

function decide(compiled: Pick<CompiledAuthorization, 'deny' | 'allow'>, req: AuthzRequest): { allowed: boolean; reason: string; policy?: string } {
  const denied = compiled.deny.find((policy) => policyMatches(policy, req));
  if (denied) return { allowed: false, reason: `denied by DENY policy ${denied.ref.name}`, policy: denied.ref.name };
  if (compiled.allow.length === 0) return { allowed: true, reason: 'no ALLOW policy' };
  const allowed = compiled.allow.find((policy) => policyMatches(policy, req));
  if (allowed) return { allowed: true, reason: `allowed by ALLOW policy ${allowed.ref.name}`, policy: allowed.ref.name };
  return { allowed: false, reason: 'no ALLOW policy matched' };
}

const cache = new WeakMap<AuthorizationPolicyRef[], CompiledAuthorization>();

/**
 * Decides one request. Pass the same policies array (the snapshot's) every time: it is compiled
 * once and cached. A denied request is answered 403 `RBAC: access denied` by the caller; an allowed
 * one with `customProvider` must still pass checkExternalAuthz.
 */
export function evaluateAuthorization(
  policies: AuthorizationPolicyRef[] | CompiledAuthorization,
  req: AuthzRequest,
): AuthzDecision {
  let compiled: CompiledAuthorization;
  if (Array.isArray(policies)) {
    compiled = cache.get(policies) ?? compileAuthorization(policies);
    cache.set(policies, compiled);
  } else compiled = policies;

  const decision: AuthzDecision = decide(compiled, req);
  const custom = compiled.custom.find((policy) => policyMatches(policy, req));
  if (custom) {
    decision.customProvider = custom.ref.provider;
    decision.reason = `${decision.reason}; CUSTOM policy ${custom.ref.name} delegates to ${custom.ref.provider ?? '(no provider)'}`;
  }
  const audited = compiled.audit.filter((policy) => policyMatches(policy, req)).map((policy) => policy.ref.name);
  if (audited.length > 0) decision.audited = audited;
  if (compiled.dryRun.length > 0) {
    const shadow = decide(
      {
        deny: compiled.dryRun.filter((p) => p.ref.action === 'DENY'),
        allow: [...compiled.allow, ...compiled.dryRun.filter((p) => p.ref.action === 'ALLOW' || p.ref.action === undefined)],
      },
      req,
    );
    decision.dryRun = { allowed: shadow.allowed && decision.allowed, policy: shadow.policy };
  }
  return decision;
}
