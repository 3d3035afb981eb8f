import { describe, expect, it } from '@jest/globals';
import type { AuthzRule, AuthzSource, AuthzOperation, AuthzCondition } from '../../src/mesh/api/security.js';
import type { AuthorizationPolicyRef } from '../../src/mesh/snapshot.js';
import { evaluateAuthorization } from '../../src/security/authz/evaluate.js';
import type { AuthzRequest } from '../../src/security/authz/types.js';

/** The request every row starts from; rows override fields. */
const base: AuthzRequest = {
  method: 'GET',
  path: '/api/v1/items?page=2',
  host: 'shop.example.com:8080',
  headers: { 'x-env': 'prod', 'x-multi': ['a', 'b'], 'user-agent': 'curl/8' },
  port: 8080,
  destinationIp: '10.0.0.5',
  sourceIp: '10.1.2.3',
  remoteIp: '203.0.113.7',
  sourcePrincipal: 'cluster.local/ns/shop/sa/web',
  requestPrincipal: 'https://issuer.example/alice',
  claims: {
    iss: 'https://issuer.example',
    sub: 'alice',
    aud: ['api', 'web'],
    azp: 'frontend',
    groups: ['admin', 'dev'],
    org: { team: 'core', level: 3 },
    verified: true,
  },
  sni: 'outbound_.8080_._.shop.svc.cluster.local',
};

const allowWith = (rule: AuthzRule): AuthorizationPolicyRef[] => [{ name: 'shop/allow', action: 'ALLOW', rules: [rule] }];
const from = (source: AuthzSource): AuthzRule => ({ from: [{ source }] });
const to = (operation: AuthzOperation): AuthzRule => ({ to: [{ operation }] });
const when = (...conditions: AuthzCondition[]): AuthzRule => ({ when: conditions });

type Row = [label: string, rule: AuthzRule, expected: boolean, overrides?: Partial<AuthzRequest>];

/** ALLOW policy with one rule × request ⇒ allowed? (every source, operation and condition field) */
const matrix: Row[] = [
  // ---- from.source
  ['principals exact', from({ principals: ['cluster.local/ns/shop/sa/web'] }), true],
  ['principals other', from({ principals: ['cluster.local/ns/shop/sa/db'] }), false],
  ['principals prefix*', from({ principals: ['cluster.local/ns/shop/*'] }), true],
  ['principals *suffix', from({ principals: ['*/sa/web'] }), true],
  ['principals * needs an identity', from({ principals: ['*'] }), false, { sourcePrincipal: undefined }],
  ['principals * with identity', from({ principals: ['*'] }), true],
  ['notPrincipals excludes', from({ notPrincipals: ['cluster.local/ns/shop/sa/web'] }), false],
  ['notPrincipals other', from({ notPrincipals: ['cluster.local/ns/x/sa/y'] }), true],
  ['requestPrincipals exact', from({ requestPrincipals: ['https://issuer.example/alice'] }), true],
  ['requestPrincipals issuer*', from({ requestPrincipals: ['https://issuer.example/*'] }), true],
  ['requestPrincipals * without JWT', from({ requestPrincipals: ['*'] }), false, { requestPrincipal: undefined }],
  ['notRequestPrincipals excludes', from({ notRequestPrincipals: ['*/alice'] }), false],
  ['notRequestPrincipals without JWT', from({ notRequestPrincipals: ['*'] }), true, { requestPrincipal: undefined }],
  ['namespaces', from({ namespaces: ['shop'] }), true],
  ['namespaces other', from({ namespaces: ['billing'] }), false],
  ['namespaces prefix', from({ namespaces: ['sh*'] }), true],
  ['namespaces from explicit sourceNamespace', from({ namespaces: ['ops'] }), true, { sourceNamespace: 'ops' }],
  ['namespaces without identity', from({ namespaces: ['shop'] }), false, { sourcePrincipal: undefined }],
  ['notNamespaces excludes', from({ notNamespaces: ['shop'] }), false],
  ['notNamespaces other', from({ notNamespaces: ['billing'] }), true],
  ['serviceAccounts ns/sa', from({ serviceAccounts: ['shop/web'] }), true],
  ['serviceAccounts other', from({ serviceAccounts: ['shop/db'] }), false],
  ['notServiceAccounts excludes', from({ notServiceAccounts: ['shop/web'] }), false],
  ['ipBlocks v4 CIDR', from({ ipBlocks: ['10.1.0.0/16'] }), true],
  ['ipBlocks v4 single address', from({ ipBlocks: ['10.1.2.3'] }), true],
  ['ipBlocks v4 miss', from({ ipBlocks: ['10.2.0.0/16'] }), false],
  ['ipBlocks v4-mapped v6 peer', from({ ipBlocks: ['10.1.0.0/16'] }), true, { sourceIp: '::ffff:10.1.2.3' }],
  ['ipBlocks v6 CIDR', from({ ipBlocks: ['fd00:1::/32'] }), true, { sourceIp: 'fd00:1:2::7' }],
  ['ipBlocks v6 miss', from({ ipBlocks: ['fd00:2::/32'] }), false, { sourceIp: 'fd00:1:2::7' }],
  ['ipBlocks ignores remote ip', from({ ipBlocks: ['203.0.113.0/24'] }), false],
  ['notIpBlocks excludes', from({ notIpBlocks: ['10.0.0.0/8'] }), false],
  ['notIpBlocks other', from({ notIpBlocks: ['192.168.0.0/16'] }), true],
  ['remoteIpBlocks', from({ remoteIpBlocks: ['203.0.113.0/24'] }), true],
  ['remoteIpBlocks miss', from({ remoteIpBlocks: ['198.51.100.0/24'] }), false],
  ['remoteIpBlocks defaults to source ip', from({ remoteIpBlocks: ['10.1.2.3/32'] }), true, { remoteIp: undefined }],
  ['remoteIpBlocks v6', from({ remoteIpBlocks: ['2001:db8::/32'] }), true, { remoteIp: '2001:db8::1' }],
  ['notRemoteIpBlocks excludes', from({ notRemoteIpBlocks: ['203.0.113.7'] }), false],
  ['notRemoteIpBlocks other', from({ notRemoteIpBlocks: ['198.51.100.0/24'] }), true],
  ['source fields are ANDed', from({ namespaces: ['shop'], ipBlocks: ['192.168.0.0/16'] }), false],
  ['sources are ORed', { from: [{ source: { namespaces: ['x'] } }, { source: { namespaces: ['shop'] } }] }, true],
  // ---- to.operation
  ['hosts with port', to({ hosts: ['shop.example.com:8080'] }), true],
  ['hosts without port match host:port', to({ hosts: ['shop.example.com'] }), true],
  ['hosts case-insensitive', to({ hosts: ['SHOP.example.com'] }), true],
  ['hosts *suffix', to({ hosts: ['*.example.com'] }), true],
  ['hosts prefix*', to({ hosts: ['shop.*'] }), true],
  ['hosts other', to({ hosts: ['api.example.com'] }), false],
  ['notHosts excludes', to({ notHosts: ['*.example.com'] }), false],
  ['notHosts other', to({ notHosts: ['other.org'] }), true],
  ['ports', to({ ports: ['8080'] }), true],
  ['ports other', to({ ports: ['9090'] }), false],
  ['notPorts excludes', to({ notPorts: ['8080'] }), false],
  ['notPorts other', to({ notPorts: ['15000'] }), true],
  ['methods', to({ methods: ['GET', 'HEAD'] }), true],
  ['methods other', to({ methods: ['POST'] }), false],
  ['notMethods excludes', to({ notMethods: ['GET'] }), false],
  ['notMethods other', to({ notMethods: ['DELETE'] }), true],
  ['paths exact (query ignored)', to({ paths: ['/api/v1/items'] }), true],
  ['paths exact other', to({ paths: ['/api/v1'] }), false],
  ['paths prefix*', to({ paths: ['/api/*'] }), true],
  ['paths *suffix', to({ paths: ['*/items'] }), true],
  ['paths *', to({ paths: ['*'] }), true],
  ['paths {*} one segment', to({ paths: ['/api/{*}/items'] }), true],
  ['paths {*} is exactly one segment', to({ paths: ['/{*}/items'] }), false],
  ['paths {**} many segments', to({ paths: ['/{**}/items'] }), true],
  ['paths {**} trailing', to({ paths: ['/api/{**}'] }), true],
  ['paths {*} template miss', to({ paths: ['/api/{*}/orders'] }), false],
  ['notPaths excludes', to({ notPaths: ['/api/*'] }), false],
  ['notPaths other', to({ notPaths: ['/admin/*'] }), true],
  ['operation fields are ANDed', to({ methods: ['GET'], paths: ['/admin'] }), false],
  // ---- when
  ['request.headers exact', when({ key: 'request.headers[x-env]', values: ['prod'] }), true],
  ['request.headers case-insensitive name', when({ key: 'request.headers[X-Env]', values: ['prod'] }), true],
  ['request.headers prefix', when({ key: 'request.headers[user-agent]', values: ['curl/*'] }), true],
  ['request.headers missing', when({ key: 'request.headers[x-missing]', values: ['*'] }), false],
  ['request.headers notValues', when({ key: 'request.headers[x-env]', notValues: ['prod'] }), false],
  ['request.headers multi-valued', when({ key: 'request.headers[x-multi]', values: ['a,b'] }), true],
  ['source.ip CIDR', when({ key: 'source.ip', values: ['10.1.2.0/24'] }), true],
  ['source.ip notValues', when({ key: 'source.ip', notValues: ['10.0.0.0/8'] }), false],
  ['remote.ip', when({ key: 'remote.ip', values: ['203.0.113.7'] }), true],
  ['remote.ip miss', when({ key: 'remote.ip', values: ['10.0.0.0/8'] }), false],
  ['source.namespace', when({ key: 'source.namespace', values: ['shop'] }), true],
  ['source.namespace notValues', when({ key: 'source.namespace', notValues: ['shop'] }), false],
  ['source.principal', when({ key: 'source.principal', values: ['cluster.local/ns/shop/sa/web'] }), true],
  ['source.principal miss', when({ key: 'source.principal', values: ['*/sa/db'] }), false],
  ['request.auth.principal', when({ key: 'request.auth.principal', values: ['https://issuer.example/alice'] }), true],
  ['request.auth.principal miss', when({ key: 'request.auth.principal', values: ['*/bob'] }), false],
  ['request.auth.audiences any element', when({ key: 'request.auth.audiences', values: ['web'] }), true],
  ['request.auth.audiences miss', when({ key: 'request.auth.audiences', values: ['billing'] }), false],
  ['request.auth.presenter', when({ key: 'request.auth.presenter', values: ['frontend'] }), true],
  ['request.auth.presenter miss', when({ key: 'request.auth.presenter', values: ['mobile'] }), false],
  ['request.auth.claims[iss]', when({ key: 'request.auth.claims[iss]', values: ['https://issuer.example'] }), true],
  ['request.auth.claims list element', when({ key: 'request.auth.claims[groups]', values: ['admin'] }), true],
  ['request.auth.claims list miss', when({ key: 'request.auth.claims[groups]', values: ['root'] }), false],
  ['request.auth.claims nested [a][b]', when({ key: 'request.auth.claims[org][team]', values: ['core'] }), true],
  ['request.auth.claims nested number', when({ key: 'request.auth.claims[org][level]', values: ['3'] }), true],
  ['request.auth.claims boolean', when({ key: 'request.auth.claims[verified]', values: ['true'] }), true],
  ['request.auth.claims nested miss', when({ key: 'request.auth.claims[org][team]', values: ['edge'] }), false],
  ['request.auth.claims without JWT', when({ key: 'request.auth.claims[sub]', values: ['*'] }), false, { claims: undefined }],
  ['request.auth.claims notValues', when({ key: 'request.auth.claims[groups]', notValues: ['dev'] }), false],
  ['destination.ip', when({ key: 'destination.ip', values: ['10.0.0.0/24'] }), true],
  ['destination.ip miss', when({ key: 'destination.ip', values: ['10.9.0.0/16'] }), false],
  ['destination.port', when({ key: 'destination.port', values: ['8080'] }), true],
  ['destination.port miss', when({ key: 'destination.port', values: ['80'] }), false],
  ['connection.sni', when({ key: 'connection.sni', values: ['outbound_.8080_*'] }), true],
  ['connection.sni miss', when({ key: 'connection.sni', values: ['inbound*'] }), false],
  ['when conditions are ANDed', when({ key: 'source.namespace', values: ['shop'] }, { key: 'destination.port', values: ['1'] }), false],
  ['values and notValues together', when({ key: 'request.headers[x-env]', values: ['p*'], notValues: ['prod'] }), false],
  ['unknown key never allows', when({ key: 'request.magic', values: ['x'] }), false],
  // ---- rule composition
  ['empty rule matches everything', {}, true],
  ['from AND to AND when', { ...from({ namespaces: ['shop'] }), ...to({ methods: ['GET'] }), ...when({ key: 'destination.port', values: ['8080'] }) }, true],
  ['from AND to: to fails', { ...from({ namespaces: ['shop'] }), ...to({ methods: ['POST'] }) }, false],
];

describe('authorization matrix (ALLOW policy with one rule × request)', () => {
  // Objects, not tuples: a tuple row shorter than the callback's arity makes jest pass `done`.
  const rows = matrix.map(([label, rule, expected, overrides]) => ({ label, rule, expected, overrides }));
  it.each(rows)('$label ⇒ allowed=$expected', ({ rule, expected, overrides }) => {
    const decision = evaluateAuthorization(allowWith(rule), { ...base, ...overrides });
    expect(decision.allowed).toBe(expected);
    expect(decision.policy).toBe(expected ? 'shop/allow' : undefined);
  });

  it('a DENY policy with the same rule is the mirror image (except unknown keys, which fail closed)', () => {
    for (const [label, rule, expected, overrides] of matrix) {
      const decision = evaluateAuthorization([{ name: 'shop/deny', action: 'DENY', rules: [rule] }], { ...base, ...overrides });
      const mirror = label === 'unknown key never allows' ? false : !expected;
      expect({ label, allowed: decision.allowed }).toEqual({ label, allowed: mirror });
    }
  });
});

describe('evaluation order and policy shapes', () => {
  const allowAll: AuthorizationPolicyRef = { name: 'ns/allow-all', action: 'ALLOW', rules: [{}] };
  const allowNothing: AuthorizationPolicyRef = { name: 'ns/allow-nothing', action: 'ALLOW' };
  const denyGet: AuthorizationPolicyRef = { name: 'ns/deny-get', action: 'DENY', rules: [to({ methods: ['GET'] })] };
  const denyPost: AuthorizationPolicyRef = { name: 'ns/deny-post', action: 'DENY', rules: [to({ methods: ['POST'] })] };
  const auditAll: AuthorizationPolicyRef = { name: 'ns/audit', action: 'AUDIT', rules: [{}] };
  const custom: AuthorizationPolicyRef = { name: 'ns/ext', action: 'CUSTOM', provider: 'opa', rules: [to({ paths: ['/api/*'] })] };
  const customAdmin: AuthorizationPolicyRef = { name: 'ns/ext-admin', action: 'CUSTOM', provider: 'opa', rules: [to({ paths: ['/admin/*'] })] };

  const cases: Array<[string, AuthorizationPolicyRef[], Partial<AuthzRequest>, { allowed: boolean; policy?: string; customProvider?: string }]> = [
    ['no policies ⇒ allow', [], {}, { allowed: true }],
    ['spec {} (ALLOW without rules) ⇒ deny all', [allowNothing], {}, { allowed: false }],
    ['rules [{}] ⇒ allow all', [allowAll], {}, { allowed: true, policy: 'ns/allow-all' }],
    ['allow-nothing beside another ALLOW that matches', [allowNothing, allowAll], {}, { allowed: true, policy: 'ns/allow-all' }],
    ['DENY wins over ALLOW', [allowAll, denyGet], {}, { allowed: false, policy: 'ns/deny-get' }],
    ['non-matching DENY, no ALLOW ⇒ allow', [denyPost], {}, { allowed: true }],
    ['DENY without rules matches nothing', [{ name: 'ns/deny-none', action: 'DENY' }], {}, { allowed: true }],
    ['DENY rules [{}] denies all', [{ name: 'ns/deny-all', action: 'DENY', rules: [{}] }, allowAll], {}, { allowed: false, policy: 'ns/deny-all' }],
    ['AUDIT alone never denies', [auditAll], {}, { allowed: true }],
    ['AUDIT does not count as an ALLOW policy', [auditAll, allowNothing], {}, { allowed: false }],
    ['CUSTOM match delegates to its provider', [custom], {}, { allowed: true, customProvider: 'opa' }],
    ['CUSTOM non-match does not delegate', [customAdmin], {}, { allowed: true, customProvider: undefined }],
    ['DENY still denies when CUSTOM matches', [custom, denyGet], {}, { allowed: false, policy: 'ns/deny-get', customProvider: 'opa' }],
    ['ALLOW still required after CUSTOM', [custom, allowNothing], {}, { allowed: false, customProvider: 'opa' }],
    ['dry-run DENY does not deny', [{ ...denyGet, dryRun: true }], {}, { allowed: true }],
  ];

  it.each(cases)('%s', (_label, policies, overrides, expected) => {
    const decision = evaluateAuthorization(policies, { ...base, ...overrides });
    expect({ allowed: decision.allowed, policy: decision.policy, customProvider: decision.customProvider }).toEqual({
      policy: undefined,
      customProvider: undefined,
      ...expected,
    });
  });

  it('reports AUDIT matches and the dry-run decision without changing the outcome', () => {
    const decision = evaluateAuthorization([auditAll, { ...denyGet, dryRun: true }, allowAll], base);
    expect(decision.allowed).toBe(true);
    expect(decision.audited).toEqual(['ns/audit']);
    expect(decision.dryRun).toEqual({ allowed: false, policy: 'ns/deny-get' });
  });

  it('TCP: HTTP-only fields never satisfy ALLOW and are ignored by DENY (Istio)', () => {
    const tcp = { ...base, protocol: 'tcp' as const, method: undefined, path: undefined };
    expect(evaluateAuthorization(allowWith(to({ ports: ['8080'], methods: ['GET'] })), tcp).allowed).toBe(false);
    expect(evaluateAuthorization(allowWith(to({ ports: ['8080'] })), tcp).allowed).toBe(true);
    expect(evaluateAuthorization([{ name: 'd', action: 'DENY', rules: [to({ ports: ['8080'], methods: ['POST'] })] }], tcp).allowed).toBe(false);
    expect(evaluateAuthorization([{ name: 'd', action: 'DENY', rules: [to({ ports: ['9090'], methods: ['POST'] })] }], tcp).allowed).toBe(true);
  });

  it('compiles a policies array once and gives the same answers on reuse', () => {
    const policies = [allowWith(from({ namespaces: ['shop'] }))[0]];
    const first = evaluateAuthorization(policies, base);
    const again = evaluateAuthorization(policies, { ...base, sourcePrincipal: 'cluster.local/ns/other/sa/x' });
    expect([first.allowed, again.allowed]).toEqual([true, false]);
  });
});
