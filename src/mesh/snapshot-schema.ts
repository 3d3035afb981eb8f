/**
 * JSON schema of the proxy snapshot (./snapshot.ts) and the check the proxy runs before applying
 * one. Beyond the schema it checks what a schema cannot: regexes compile under RE2, every route,
 * mirror, endpoint set and listener refers to something that exists, names are unique.
 *
 * Unknown fields are accepted (unlike user config): the snapshot is a wire format, and a proxy
 * must keep working when a newer operator adds an optional field, as protobuf readers do.
 * This module imports no other mesh module at runtime, so the proxy pays only for ajv and re2js.
 */
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { RE2JS } from 're2js';
import { pointerToPath } from './field-path.js';
import { SNAPSHOT_FORMAT } from './snapshot.js';
import type { ProxySnapshot, RouteMatch, StringMatcher } from './snapshot.js';

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const bool: Schema = { type: 'boolean' };
const nonNegInt: Schema = { type: 'integer', minimum: 0 };
const ms: Schema = { type: 'number', minimum: 0 };
const port: Schema = { type: 'integer', minimum: 0, maximum: 65535 };
const percent: Schema = { type: 'number', minimum: 0, maximum: 100 };
const strList: Schema = { type: 'array', items: str };
const strMap: Schema = { type: 'object', additionalProperties: str };

function rec(properties: Record<string, Schema>, required: string[] = []): Schema {
  return { type: 'object', properties, required };
}
function list(items: Schema): Schema {
  return { type: 'array', items };
}
function oneOfValues(...values: Array<string | number>): Schema {
  return { enum: values };
}

const stringMatcher: Schema = {
  type: 'object',
  properties: { exact: str, prefix: str, regex: str, present: { const: true } },
  oneOf: [{ required: ['exact'] }, { required: ['prefix'] }, { required: ['regex'] }, { required: ['present'] }],
};
const headerOps = rec({ set: strMap, add: strMap, remove: strList });

const retryPolicy = rec(
  { attempts: nonNegInt, perTryTimeoutMs: ms, retryOn: strList, retriableStatusCodes: list({ type: 'integer', minimum: 100, maximum: 599 }), backoffBaseMs: ms },
  ['attempts', 'retryOn', 'retriableStatusCodes', 'backoffBaseMs'],
);

const routeMatch = rec({
  uri: stringMatcher,
  ignoreUriCase: bool,
  scheme: stringMatcher,
  method: stringMatcher,
  authority: stringMatcher,
  headers: { type: 'object', additionalProperties: stringMatcher },
  withoutHeaders: { type: 'object', additionalProperties: stringMatcher },
  queryParams: { type: 'object', additionalProperties: stringMatcher },
  port,
  name: str,
});

const routeDestination = rec({ cluster: str, weight: nonNegInt, requestHeaders: headerOps, responseHeaders: headerOps }, ['cluster', 'weight']);

const routeAction: Schema = {
  type: 'object',
  discriminator: { propertyName: 'kind' },
  required: ['kind'],
  oneOf: [
    rec({ kind: { const: 'route' }, destinations: { type: 'array', items: routeDestination, minItems: 1 } }, ['kind', 'destinations']),
    rec(
      {
        kind: { const: 'redirect' },
        redirect: rec(
          { uri: str, prefixRewrite: str, authority: str, port, derivePort: oneOfValues('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'), scheme: str, code: { type: 'integer', minimum: 300, maximum: 399 } },
          ['code'],
        ),
      },
      ['kind', 'redirect'],
    ),
    rec({ kind: { const: 'directResponse' }, status: { type: 'integer', minimum: 200, maximum: 599 }, body: str }, ['kind', 'status']),
  ],
};

const route = rec(
  {
    name: str,
    match: list(routeMatch),
    action: routeAction,
    rewrite: rec({ uri: str, uriRegex: rec({ match: str, rewrite: str }, ['match', 'rewrite']), authority: str }),
    timeoutMs: ms,
    retry: retryPolicy,
    fault: rec({
      delay: rec({ fixedDelayMs: ms, percent }, ['fixedDelayMs', 'percent']),
      abort: rec({ httpStatus: { type: 'integer', minimum: 200, maximum: 599 }, percent }, ['httpStatus', 'percent']),
    }),
    mirrors: list(rec({ cluster: str, percent }, ['cluster', 'percent'])),
    requestHeaders: headerOps,
    responseHeaders: headerOps,
    cors: rec(
      {
        allowOrigins: list(stringMatcher),
        allowMethods: strList,
        allowHeaders: strList,
        exposeHeaders: strList,
        maxAgeSeconds: ms,
        allowCredentials: bool,
        unmatchedPreflights: oneOfValues('FORWARD', 'IGNORE'),
      },
      ['allowOrigins', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'unmatchedPreflights'],
    ),
  },
  ['name', 'match', 'action', 'retry', 'mirrors'],
);

const loadBalancer: Schema = {
  type: 'object',
  oneOf: [
    rec({ simple: oneOfValues('LEAST_REQUEST', 'ROUND_ROBIN', 'RANDOM', 'PASSTHROUGH') }, ['simple']),
    rec(
      {
        consistentHash: rec(
          { httpHeaderName: str, httpCookie: rec({ name: str, path: str, ttlMs: ms }, ['name']), useSourceIp: bool, httpQueryParameterName: str, minimumRingSize: nonNegInt },
          ['minimumRingSize'],
        ),
      },
      ['consistentHash'],
    ),
  ],
};

const upstreamCluster = rec(
  {
    name: str,
    service: str,
    port,
    subset: str,
    lb: loadBalancer,
    connectionPool: rec(
      {
        maxConnections: nonNegInt,
        connectTimeoutMs: ms,
        http1MaxPendingRequests: nonNegInt,
        http2MaxRequests: nonNegInt,
        maxRequestsPerConnection: nonNegInt,
        maxRetries: nonNegInt,
        idleTimeoutMs: ms,
      },
      ['maxConnections', 'connectTimeoutMs', 'http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeoutMs'],
    ),
    outlierDetection: rec(
      { consecutive5xxErrors: nonNegInt, consecutiveGatewayErrors: nonNegInt, intervalMs: ms, baseEjectionTimeMs: ms, maxEjectionPercent: percent, minHealthPercent: percent },
      ['consecutive5xxErrors', 'consecutiveGatewayErrors', 'intervalMs', 'baseEjectionTimeMs', 'maxEjectionPercent', 'minHealthPercent'],
    ),
    tls: rec(
      { mode: oneOfValues('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'), sni: str, caCertificates: str, clientCertificate: str, privateKey: str, subjectAltNames: strList, insecureSkipVerify: bool },
      ['mode', 'subjectAltNames'],
    ),
  },
  ['name', 'service', 'port', 'lb', 'connectionPool'],
);

const endpoint = rec(
  { address: str, port, labels: strMap, tlsMode: oneOfValues('istio', 'disabled'), serviceAccount: str, weight: nonNegInt, workload: str, namespace: str },
  ['address', 'port', 'labels', 'tlsMode', 'weight'],
);

const peerAuthMode = oneOfValues('STRICT', 'PERMISSIVE', 'DISABLE');

const authzRule = rec({
  from: list(rec({ source: { type: 'object', additionalProperties: strList } })),
  to: list(rec({ operation: { type: 'object', additionalProperties: strList } })),
  when: list(rec({ key: str, values: strList, notValues: strList }, ['key'])),
});

/** The ProxySnapshot JSON schema (draft-07, ajv). */
export const SNAPSHOT_JSON_SCHEMA: Schema = {
  $id: 'https://trellis.dev/schemas/snapshot/v1.json',
  title: 'Trellis proxy snapshot',
  ...rec(
    {
      format: { const: SNAPSHOT_FORMAT },
      version: { type: 'string', pattern: '^[0-9a-f]{16}$' },
      meshVersion: str,
      proxy: rec(
        { id: str, cluster: str, namespace: str, workload: str, labels: strMap, service: str, serviceAccount: str, mode: oneOfValues('sidecar', 'gateway') },
        ['id', 'cluster', 'namespace', 'workload', 'labels', 'serviceAccount', 'mode'],
      ),
      mesh: rec(
        {
          trustDomain: str,
          rootNamespace: str,
          enableAutoMtls: bool,
          outboundTrafficPolicy: oneOfValues('ALLOW_ANY', 'REGISTRY_ONLY'),
          connectTimeoutMs: ms,
          defaultRetry: retryPolicy,
          extensionProviders: list(
            rec(
              {
                name: str,
                envoyExtAuthzHttp: rec(
                  {
                    service: str,
                    port,
                    pathPrefix: str,
                    timeoutMs: ms,
                    includeRequestHeadersInCheck: strList,
                    headersToUpstreamOnAllow: strList,
                    headersToDownstreamOnDeny: strList,
                    failOpen: bool,
                  },
                  ['service', 'port'],
                ),
              },
              ['name'],
            ),
          ),
        },
        ['trustDomain', 'rootNamespace', 'enableAutoMtls', 'outboundTrafficPolicy', 'connectTimeoutMs', 'defaultRetry', 'extensionProviders'],
      ),
      routeConfigs: list(rec({ name: str, virtualHosts: list(rec({ name: str, domains: strList, routes: list(route) }, ['name', 'domains', 'routes'])) }, ['name', 'virtualHosts'])),
      clusters: list(upstreamCluster),
      endpoints: list(rec({ cluster: str, endpoints: list(endpoint) }, ['cluster', 'endpoints'])),
      listeners: list(
        rec(
          {
            name: str,
            port,
            bind: str,
            protocol: oneOfValues('HTTP', 'HTTPS', 'HTTP2', 'TLS', 'TCP'),
            hosts: strList,
            tls: rec(
              {
                mode: oneOfValues('SIMPLE', 'MUTUAL', 'PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL', 'AUTO_PASSTHROUGH'),
                serverCertificate: str,
                privateKey: str,
                caCertificates: str,
                credentialName: str,
                minProtocolVersion: str,
              },
              ['mode'],
            ),
            httpsRedirect: bool,
            routeConfig: str,
          },
          ['name', 'port', 'protocol', 'hosts', 'routeConfig'],
        ),
      ),
      inbound: rec(
        {
          mtlsMode: peerAuthMode,
          portLevelMtls: { type: 'object', additionalProperties: peerAuthMode, propertyNames: { pattern: '^[0-9]+$' } },
          authorization: list(
            rec({ name: str, action: oneOfValues('ALLOW', 'DENY', 'AUDIT', 'CUSTOM'), provider: str, rules: list(authzRule), dryRun: bool }, ['name', 'action']),
          ),
          jwtRules: list(
            rec(
              {
                policy: str,
                issuer: str,
                audiences: strList,
                jwks: str,
                jwksUri: str,
                fromHeaders: list(rec({ name: str, prefix: str }, ['name'])),
                fromParams: strList,
                fromCookies: strList,
                forwardOriginalToken: bool,
                outputPayloadToHeader: str,
                outputClaimToHeaders: list(rec({ header: str, claim: str }, ['header', 'claim'])),
                timeoutMs: ms,
              },
              ['policy', 'issuer', 'audiences', 'fromHeaders', 'fromParams', 'fromCookies', 'forwardOriginalToken', 'outputClaimToHeaders', 'timeoutMs'],
            ),
          ),
        },
        ['mtlsMode', 'portLevelMtls', 'authorization', 'jwtRules'],
      ),
      telemetry: rec(
        { accessLog: bool, accessLogEncoding: oneOfValues('TEXT', 'JSON'), metrics: bool, tracingSamplingPercent: percent },
        ['accessLog', 'accessLogEncoding', 'metrics', 'tracingSamplingPercent'],
      ),
    },
    ['format', 'version', 'meshVersion', 'proxy', 'mesh', 'routeConfigs', 'clusters', 'endpoints', 'listeners', 'inbound', 'telemetry'],
  ),
};

const validateShape = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, discriminator: true }).compile(SNAPSHOT_JSON_SCHEMA);

/** Built-in cluster names a route may name without defining them. */
const BUILTIN_CLUSTERS = new Set(['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughCluster']);
const MAX_REPORTED_ERRORS = 50;

export type SnapshotCheck = { ok: true; snapshot: ProxySnapshot } | { ok: false; errors: string[] };

/**
 * Checks a snapshot before the proxy applies it. Errors are strings `path: message`, capped at
 * MAX_REPORTED_ERRORS so a hostile snapshot cannot flood a NACK.
 */
export function validateSnapshot(value: unknown): SnapshotCheck {
  if (!validateShape(value)) {
    const errors = (validateShape.errors ?? []).map(formatAjvError);
    return { ok: false, errors: dedupe(errors).slice(0, MAX_REPORTED_ERRORS) };
  }
  const snapshot = value as unknown as ProxySnapshot;
  const errors = checkReferences(snapshot);
  return errors.length > 0 ? { ok: false, errors: errors.slice(0, MAX_REPORTED_ERRORS) } : { ok: true, snapshot };
}

function formatAjvError(err: ErrorObject): string {
  const path = pointerToPath(err.instancePath, 'snapshot');
  if (err.keyword === 'required') return `${path}: missing required field "${(err.params as { missingProperty: string }).missingProperty}"`;
  if (err.keyword === 'discriminator') {
    const { tag, tagValue } = err.params as { tag: string; tagValue: unknown };
    return `${path}.${tag}: unknown ${tag} ${JSON.stringify(tagValue)}`;
  }
  if (err.keyword === 'enum') return `${path}: must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  return `${path}: ${err.message ?? 'is invalid'}`;
}

function dedupe(items: string[]): string[] {
  return [...new Set(items)];
}

function checkReferences(snapshot: ProxySnapshot): string[] {
  const errors: string[] = [];
  const clusterNames = new Set<string>();
  snapshot.clusters.forEach((cluster, i) => {
    if (clusterNames.has(cluster.name)) errors.push(`snapshot.clusters[${i}].name: duplicate cluster ${JSON.stringify(cluster.name)}`);
    clusterNames.add(cluster.name);
  });
  const knownCluster = (name: string): boolean => clusterNames.has(name) || BUILTIN_CLUSTERS.has(name);

  const routeConfigNames = new Set<string>();
  snapshot.routeConfigs.forEach((config, i) => {
    const configPath = `snapshot.routeConfigs[${i}]`;
    if (routeConfigNames.has(config.name)) errors.push(`${configPath}.name: duplicate route config ${JSON.stringify(config.name)}`);
    routeConfigNames.add(config.name);
    config.virtualHosts.forEach((vhost, j) => {
      vhost.routes.forEach((r, k) => {
        const routePath = `${configPath}.virtualHosts[${j}].routes[${k}]`;
        r.match.forEach((m, n) => checkMatchRegexes(errors, `${routePath}.match[${n}]`, m));
        if (r.action.kind === 'route') {
          r.action.destinations.forEach((d, n) => {
            if (!knownCluster(d.cluster)) errors.push(`${routePath}.action.destinations[${n}].cluster: cluster ${JSON.stringify(d.cluster)} is not in the snapshot`);
          });
        }
        r.mirrors.forEach((m, n) => {
          if (!knownCluster(m.cluster)) errors.push(`${routePath}.mirrors[${n}].cluster: cluster ${JSON.stringify(m.cluster)} is not in the snapshot`);
        });
        if (r.rewrite?.uriRegex) checkRegex(errors, `${routePath}.rewrite.uriRegex.match`, r.rewrite.uriRegex.match);
        r.cors?.allowOrigins.forEach((o, n) => checkMatcherRegex(errors, `${routePath}.cors.allowOrigins[${n}]`, o));
      });
    });
  });

  snapshot.endpoints.forEach((assignment, i) => {
    if (!clusterNames.has(assignment.cluster)) errors.push(`snapshot.endpoints[${i}].cluster: cluster ${JSON.stringify(assignment.cluster)} is not in the snapshot`);
  });
  snapshot.listeners.forEach((listener, i) => {
    if (!routeConfigNames.has(listener.routeConfig)) {
      errors.push(`snapshot.listeners[${i}].routeConfig: route config ${JSON.stringify(listener.routeConfig)} is not in the snapshot`);
    }
  });
  return errors;
}

function checkMatchRegexes(errors: string[], path: string, match: RouteMatch): void {
  for (const field of ['uri', 'scheme', 'method', 'authority'] as const) {
    const matcher = match[field];
    if (matcher) checkMatcherRegex(errors, `${path}.${field}`, matcher);
  }
  for (const field of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    for (const [name, matcher] of Object.entries(match[field] ?? {})) checkMatcherRegex(errors, `${path}.${field}[${JSON.stringify(name)}]`, matcher);
  }
}

function checkMatcherRegex(errors: string[], path: string, matcher: StringMatcher): void {
  if ('regex' in matcher) checkRegex(errors, `${path}.regex`, matcher.regex);
}

function checkRegex(errors: string[], path: string, pattern: string): void {
  try {
    RE2JS.compile(pattern);
  } catch (err) {
    errors.push(`${path}: regex ${JSON.stringify(pattern)} does not compile under RE2: ${(err as Error).message}`);
  }
}
