/** VirtualService semantics, after istio pkg/config/validation (ValidateVirtualService and helpers). */
import { isIP } from 'node:net';
import { parseDuration } from '../duration.js';
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';
import {
  arr,
  checkExportTo,
  checkHeaderName,
  checkHost,
  checkLabels,
  checkMinDuration,
  checkPercentage,
  checkPortNumber,
  checkRegex,
  checkStringMatch,
  entries,
  has,
  hostError,
  isCidrOrIp,
  isDnsLabel,
  isObj,
} from './checks.js';
import type { Json } from './checks.js';

/** Envoy retry policies Istio accepts in `retryOn`, besides bare HTTP status codes. */
export const RETRY_ON_POLICIES: ReadonlySet<string> = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

const GRPC_STATUS = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
]);

const MAX_DIRECT_RESPONSE_BODY_BYTES = 100 * 1024;

export function validateVirtualService(spec: Json, report: ObjectReport): void {
  const hosts = arr(spec.hosts);
  const gateways = arr(spec.gateways).filter((g): g is string => typeof g === 'string');
  const isDelegate = hosts.length === 0;
  const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');

  if (isDelegate) {
    if (gateways.length > 0) report.error('spec.gateways', 'a delegate VirtualService (no hosts) must not list gateways');
    if (arr(spec.tls).length > 0) report.error('spec.tls', 'a delegate VirtualService (no hosts) must not have tls routes');
    if (arr(spec.tcp).length > 0) report.error('spec.tcp', 'a delegate VirtualService (no hosts) must not have tcp routes');
  }
  hosts.forEach((host, i) => {
    const path = `spec.hosts[${i}]`;
    if (host === '*' && appliesToMesh) report.error(path, 'wildcard host "*" is not allowed for a VirtualService bound to the mesh gateway');
    else checkHost(report, path, host, { allowIp: !appliesToMesh });
  });
  const validHosts = hosts.filter((h): h is string => typeof h === 'string' && (h === '*' || hostError(h) === undefined));
  for (let i = 0; i < validHosts.length; i++) {
    for (let j = i + 1; j < validHosts.length; j++) {
      if (hostCovers(validHosts[i], validHosts[j]) || hostCovers(validHosts[j], validHosts[i])) {
        report.error(`spec.hosts[${hosts.indexOf(validHosts[j])}]`, `duplicate hosts in VirtualService: ${validHosts[i]} & ${validHosts[j]}`);
      }
    }
  }
  gateways.forEach((gateway, i) => checkGatewayName(report, `spec.gateways[${i}]`, gateway));
  checkExportTo(report, 'spec.exportTo', spec.exportTo, { namespace: report.obj.metadata?.namespace });

  if (arr(spec.http).length === 0 && arr(spec.tls).length === 0 && arr(spec.tcp).length === 0) {
    report.error('spec', 'http, tcp or tls must be provided in a VirtualService');
  }
  arr(spec.http).forEach((route, i) => {
    if (isObj(route)) validateHttpRoute(report, `spec.http[${i}]`, route, isDelegate, !appliesToMesh);
  });
  arr(spec.tls).forEach((route, i) => {
    if (isObj(route)) validateTlsRoute(report, `spec.tls[${i}]`, route, hosts.filter((h): h is string => typeof h === 'string'));
  });
  arr(spec.tcp).forEach((route, i) => {
    if (isObj(route)) validateTcpRoute(report, `spec.tcp[${i}]`, route);
  });
  for (const section of ['http', 'tls', 'tcp']) warnUnreachableRules(report, section, arr(spec[section]));
  // Valid Istio, but the Trellis data plane proxies HTTP/1.1 only: say so rather than drop them silently.
  for (const section of ['tls', 'tcp']) {
    if (arr(spec[section]).length > 0) report.warn(`spec.${section}`, `${section} routes are not supported by the Trellis data plane (HTTP only): not applied`);
  }
}

/**
 * Istio's analyzeUnreachable*Rules: rules after a catch-all (no match) are never used, and a
 * match identical to an earlier one is ineffective. Warnings, as Istio reports them.
 */
function warnUnreachableRules(report: ObjectReport, section: string, routes: unknown[]): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  routes.forEach((route, i) => {
    if (!isObj(route)) return;
    const path = `spec.${section}[${i}]`;
    const matches = arr(route.match);
    if (matches.length === 0) {
      if (catchAll >= 0) report.warn(path, `rule ${i} is never used: only the last rule can have no match (rule ${catchAll} has none)`);
      catchAll = catchAll >= 0 ? catchAll : i;
      return;
    }
    if (catchAll >= 0) {
      report.warn(path, `rule ${i} is never used: rule ${catchAll} before it has no match and takes all traffic`);
      return;
    }
    let duplicates = 0;
    matches.forEach((match, j) => {
      const key = JSON.stringify(isObj(match) ? { ...match, name: undefined } : match);
      const first = seen.get(key);
      if (first !== undefined) {
        report.warn(`${path}.match[${j}]`, `match ${j} is never used: rule ${first} has the same match`);
        duplicates++;
      } else seen.set(key, i);
    });
    if (duplicates === matches.length) report.warn(path, `rule ${i} is never used: all its matches are used by earlier rules`);
  });
}

function checkGatewayName(report: ObjectReport, path: string, gateway: string): void {
  if (gateway === 'mesh') return;
  const parts = gateway.split('/');
  const valid = parts.length <= 2 && parts.every((p) => p.length > 0 && p.split('.').every((l) => isDnsLabel(l)));
  if (!valid) report.error(path, `gateway ${JSON.stringify(gateway)} must be "mesh", "<name>" or "<namespace>/<name>"`);
}

function validateHttpRoute(report: ObjectReport, path: string, route: Json, inDelegate: boolean, gatewayOnly: boolean): void {
  const at = (field: string): string => childPath(path, field);
  const hasRoute = arr(route.route).length > 0;
  const hasRedirect = has(route, 'redirect');
  const hasDirect = has(route, 'directResponse');
  const hasDelegate = has(route, 'delegate');

  if (hasRedirect && hasRoute) report.error(at('redirect'), 'an HTTP route cannot contain both route and redirect');
  if (hasRedirect && has(route, 'rewrite')) report.error(at('rewrite'), 'an HTTP route cannot contain both rewrite and redirect');
  if (hasRedirect && has(route, 'fault')) report.error(at('fault'), 'an HTTP route cannot contain both fault and redirect');
  if (hasDirect && hasRoute) report.error(at('directResponse'), 'directResponse is only allowed without route');
  if (hasDirect && hasRedirect) report.error(at('directResponse'), 'directResponse is only allowed without redirect');
  if (hasDelegate) {
    if (inDelegate) report.error(at('delegate'), 'a delegate VirtualService cannot delegate again (delegation is one level only)');
    if (hasRoute || hasRedirect || hasDirect) report.error(at('delegate'), 'delegate is only allowed without route, redirect and directResponse');
    const delegate = route.delegate as Json;
    if (isObj(delegate) && !delegate.name) report.error(childPath(at('delegate'), 'name'), 'delegate name is required');
  }
  if (!hasRoute && !hasRedirect && !hasDirect && !hasDelegate) {
    report.error(path, 'an HTTP route needs one of route, redirect, directResponse or delegate');
  }
  if (has(route, 'mirror') && arr(route.mirrors).length > 0) report.error(at('mirrors'), 'an HTTP route cannot contain both mirror and mirrors');

  arr(route.match).forEach((match, i) => {
    if (isObj(match)) validateHttpMatch(report, childPath(at('match'), i), match, gatewayOnly);
  });
  validateDestinations(report, at('route'), arr(route.route), true);
  if (isObj(route.redirect)) validateRedirect(report, at('redirect'), route.redirect);
  if (isObj(route.rewrite)) validateRewrite(report, at('rewrite'), route.rewrite);
  if (isObj(route.directResponse)) validateDirectResponse(report, at('directResponse'), route.directResponse);
  if (isObj(route.retries)) validateRetries(report, at('retries'), route.retries);
  if (isObj(route.fault)) validateFault(report, at('fault'), route.fault);
  if (isObj(route.corsPolicy)) validateCors(report, at('corsPolicy'), route.corsPolicy);
  validateHeaderOps(report, at('headers'), route.headers);
  checkMinDuration(report, at('timeout'), route.timeout);

  if (isObj(route.mirror)) validateDestination(report, at('mirror'), route.mirror);
  if (isObj(route.mirrorPercentage)) checkPercentage(report, childPath(at('mirrorPercentage'), 'value'), route.mirrorPercentage.value);
  for (const legacy of ['mirrorPercent', 'mirror_percent']) {
    if (typeof route[legacy] === 'number' && (route[legacy] as number) > 100) report.error(at(legacy), `${legacy} ${route[legacy]} must be in 0..100`);
  }
  arr(route.mirrors).forEach((mirror, i) => {
    const mirrorPath = childPath(at('mirrors'), i);
    if (!isObj(mirror)) return;
    if (isObj(mirror.destination)) validateDestination(report, childPath(mirrorPath, 'destination'), mirror.destination);
    if (isObj(mirror.percentage)) checkPercentage(report, childPath(childPath(mirrorPath, 'percentage'), 'value'), mirror.percentage.value);
  });
}

const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
const JWT_CLAIM_PREFIX = '@request.auth.claims.';

function validateHttpMatch(report: ObjectReport, path: string, match: Json, gatewayOnly: boolean): void {
  const at = (field: string): string => childPath(path, field);
  for (const field of ['uri', 'scheme', 'method', 'authority']) {
    if (has(match, field)) checkStringMatch(report, at(field), match[field]);
  }
  for (const field of ['headers', 'withoutHeaders']) {
    for (const [name, value] of entries(match[field])) {
      const headerPath = childPath(at(field), name);
      if (name.startsWith(JWT_CLAIM_PREFIX)) {
        if (!gatewayOnly) report.error(headerPath, `JWT claim based routing (${name}) is only supported for VirtualServices bound to gateways (not mesh)`);
      } else if (!PSEUDO_HEADERS.has(name)) checkHeaderName(report, headerPath, name);
      if (value === null) report.error(headerPath, `header match for ${JSON.stringify(name)} must not be null (use {} for presence)`);
      checkStringMatch(report, headerPath, value, { allowEmpty: true });
    }
  }
  for (const [name, value] of entries(match.queryParams)) {
    const paramPath = childPath(at('queryParams'), name);
    if (name === '') report.error(paramPath, 'query parameter name must not be empty');
    checkStringMatch(report, paramPath, value, { allowEmpty: true });
  }
  if (match.port !== undefined && match.port !== 0) checkPortNumber(report, at('port'), match.port);
  checkLabels(report, at('sourceLabels'), match.sourceLabels);
  if (match.ignoreUriCase === true && isObj(match.uri) && has(match.uri, 'regex')) {
    report.error(at('ignoreUriCase'), 'ignoreUriCase applies to exact and prefix URI matches only, not regex');
  }
}

export function validateDestination(report: ObjectReport, path: string, destination: Json): void {
  if (typeof destination.host === 'string') {
    const error = destination.host === '*' ? 'destination host must not be "*"' : hostError(destination.host);
    if (error) report.error(childPath(path, 'host'), error);
  }
  if (typeof destination.subset === 'string' && !isDnsLabel(destination.subset)) {
    report.error(childPath(path, 'subset'), `subset ${JSON.stringify(destination.subset)} is not a valid DNS-1123 label`);
  }
  if (isObj(destination.port)) checkPortNumber(report, childPath(childPath(path, 'port'), 'number'), destination.port.number);
}

function validateDestinations(report: ObjectReport, path: string, routes: unknown[], http: boolean): void {
  let total = 0;
  routes.forEach((entry, i) => {
    const entryPath = childPath(path, i);
    if (!isObj(entry)) return;
    if (isObj(entry.destination)) validateDestination(report, childPath(entryPath, 'destination'), entry.destination);
    if (typeof entry.weight === 'number') {
      if (entry.weight < 0) report.error(childPath(entryPath, 'weight'), `weight ${entry.weight} must not be negative`);
      else total += entry.weight;
    }
    if (http) validateHeaderOps(report, childPath(entryPath, 'headers'), entry.headers);
  });
  if (routes.length > 1 && total === 0) {
    report.error(path, 'total destination weight is 0: a route with several destinations needs a positive weight');
  }
}

function validateRedirect(report: ObjectReport, path: string, redirect: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (has(redirect, 'uri') && has(redirect, 'prefixRewrite')) report.error(at('prefixRewrite'), 'redirect uri and prefixRewrite are mutually exclusive');
  if (has(redirect, 'port') && has(redirect, 'derivePort')) report.error(at('derivePort'), 'redirect port and derivePort are mutually exclusive');
  if (!['uri', 'prefixRewrite', 'authority', 'scheme', 'port', 'derivePort'].some((k) => has(redirect, k))) {
    report.error(path, 'redirect must specify uri, prefixRewrite, authority, scheme or port');
  }
  if (typeof redirect.redirectCode === 'number' && redirect.redirectCode !== 0 && (redirect.redirectCode < 300 || redirect.redirectCode > 399)) {
    report.error(at('redirectCode'), `redirectCode ${redirect.redirectCode} is not a valid redirect code (3xx)`);
  }
  if (has(redirect, 'port')) checkPortNumber(report, at('port'), redirect.port);
  if (typeof redirect.scheme === 'string' && !['http', 'https'].includes(redirect.scheme)) {
    report.error(at('scheme'), `redirect scheme ${JSON.stringify(redirect.scheme)} must be http or https`);
  }
}

function validateRewrite(report: ObjectReport, path: string, rewrite: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (has(rewrite, 'uri') && has(rewrite, 'uriRegexRewrite')) report.error(at('uriRegexRewrite'), 'rewrite may contain only one of uri or uriRegexRewrite');
  if (!has(rewrite, 'uri') && !has(rewrite, 'authority') && !has(rewrite, 'uriRegexRewrite')) {
    report.error(path, 'rewrite must specify uri, authority or uriRegexRewrite');
  }
  if (isObj(rewrite.uriRegexRewrite)) {
    const regexRewrite = rewrite.uriRegexRewrite;
    if (!regexRewrite.match) report.error(childPath(at('uriRegexRewrite'), 'match'), 'uriRegexRewrite.match is required');
    else checkRegex(report, childPath(at('uriRegexRewrite'), 'match'), regexRewrite.match);
    if (!regexRewrite.rewrite) report.error(childPath(at('uriRegexRewrite'), 'rewrite'), 'uriRegexRewrite.rewrite is required');
  }
}

function validateDirectResponse(report: ObjectReport, path: string, direct: Json): void {
  if (typeof direct.status === 'number' && (direct.status < 200 || direct.status > 599)) {
    report.error(childPath(path, 'status'), `directResponse status ${direct.status} must be in 200..599`);
  }
  if (isObj(direct.body)) {
    const bodyPath = childPath(path, 'body');
    if (has(direct.body, 'string') && has(direct.body, 'bytes')) report.error(bodyPath, 'directResponse body may set only one of string or bytes');
    const text = typeof direct.body.string === 'string' ? direct.body.string : typeof direct.body.bytes === 'string' ? direct.body.bytes : '';
    if (Buffer.byteLength(text) > MAX_DIRECT_RESPONSE_BODY_BYTES) {
      report.error(bodyPath, `directResponse body is over ${MAX_DIRECT_RESPONSE_BODY_BYTES} bytes`);
    }
  }
}

function validateRetries(report: ObjectReport, path: string, retries: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (typeof retries.attempts === 'number' && retries.attempts < 0) report.error(at('attempts'), `attempts ${retries.attempts} must not be negative`);
  if ((retries.attempts ?? 0) === 0) {
    const set = ['perTryTimeout', 'retryOn', 'retryRemoteLocalities'].filter((k) => has(retries, k));
    if (set.length > 0) report.error(at(set[0]), `retry policy fields (${set.join(', ')}) are set while attempts is 0 (retries disabled)`);
  }
  checkMinDuration(report, at('perTryTimeout'), retries.perTryTimeout);
  checkMinDuration(report, at('backoff'), retries.backoff);
  if (typeof retries.retryOn === 'string') {
    for (const token of retries.retryOn.split(',').map((t) => t.trim())) {
      if (RETRY_ON_POLICIES.has(token)) continue;
      const code = /^[0-9]+$/.test(token) ? Number(token) : NaN;
      if (code >= 100 && code <= 599) continue;
      report.error(at('retryOn'), `${JSON.stringify(token)} is not a valid retryOn policy or HTTP status code`);
    }
  }
}

function validateFault(report: ObjectReport, path: string, fault: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (!has(fault, 'abort') && !has(fault, 'delay')) report.error(path, 'fault must have an abort and/or a delay');
  if (isObj(fault.abort)) {
    const abort = fault.abort;
    const kinds = ['httpStatus', 'grpcStatus', 'http2Error'].filter((k) => has(abort, k));
    if (kinds.length === 0) report.warn(at('abort'), 'abort configured, but none of httpStatus, grpcStatus or http2Error is set: nothing is aborted');
    if (has(abort, 'http2Error')) report.error(childPath(at('abort'), 'http2Error'), 'HTTP/2 error abort is not supported (as in Istio)');
    if (kinds.length > 1) report.error(at('abort'), `abort may set only one of httpStatus, grpcStatus or http2Error (found ${kinds.join(', ')})`);
    if (typeof abort.httpStatus === 'number' && (abort.httpStatus < 200 || abort.httpStatus > 599)) {
      report.error(childPath(at('abort'), 'httpStatus'), `abort httpStatus ${abort.httpStatus} must be in 200..599`);
    }
    if (has(abort, 'grpcStatus')) report.warn(childPath(at('abort'), 'grpcStatus'), 'gRPC status aborts are not supported by the Trellis data plane (HTTP/1.1 only): not applied');
    if (typeof abort.grpcStatus === 'string' && !GRPC_STATUS.has(abort.grpcStatus)) {
      report.error(childPath(at('abort'), 'grpcStatus'), `grpcStatus ${JSON.stringify(abort.grpcStatus)} is not a gRPC status name (e.g. "UNAVAILABLE")`);
    }
    if (isObj(abort.percentage)) checkPercentage(report, childPath(childPath(at('abort'), 'percentage'), 'value'), abort.percentage.value);
  }
  if (isObj(fault.delay)) {
    const delay = fault.delay;
    const kinds = ['fixedDelay', 'exponentialDelay'].filter((k) => has(delay, k));
    if (kinds.length === 0) report.warn(at('delay'), 'delay configured without fixedDelay: no request is delayed');
    if (has(delay, 'exponentialDelay')) report.error(childPath(at('delay'), 'exponentialDelay'), 'exponentialDelay is not supported (as in Istio)');
    if (kinds.length > 1) report.error(at('delay'), 'delay may set only one of fixedDelay or exponentialDelay');
    checkMinDuration(report, childPath(at('delay'), 'fixedDelay'), delay.fixedDelay);
    checkMinDuration(report, childPath(at('delay'), 'exponentialDelay'), delay.exponentialDelay);
    if (isObj(delay.percentage)) checkPercentage(report, childPath(childPath(at('delay'), 'percentage'), 'value'), delay.percentage.value);
    checkPercentage(report, childPath(at('delay'), 'percent'), delay.percent);
  }
}

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', '*']);

function validateCors(report: ObjectReport, path: string, cors: Json): void {
  const at = (field: string): string => childPath(path, field);
  arr(cors.allowOrigins).forEach((origin, i) => {
    const originPath = childPath(at('allowOrigins'), i);
    if (isObj(origin) && !['exact', 'prefix', 'regex'].some((k) => typeof origin[k] === 'string' && origin[k] !== '')) {
      report.error(originPath, 'allowOrigins entries need a non-empty exact, prefix or regex');
    }
    checkStringMatch(report, originPath, origin);
  });
  if (typeof cors.maxAge === 'string') {
    try {
      if (parseDuration(cors.maxAge) % 1000 !== 0) report.error(at('maxAge'), 'maxAge is accurate only to seconds precision');
    } catch {
      // the schema reports bad syntax
    }
  }
  arr(cors.allowMethods).forEach((method, i) => {
    if (typeof method === 'string' && !HTTP_METHODS.has(method)) report.error(childPath(at('allowMethods'), i), `${JSON.stringify(method)} is not an HTTP method`);
  });
  for (const field of ['allowHeaders', 'exposeHeaders']) {
    arr(cors[field]).forEach((name, i) => {
      if (typeof name === 'string' && name !== '*' && name === '') report.error(childPath(at(field), i), 'header name must not be empty');
    });
  }
  checkMinDuration(report, at('maxAge'), cors.maxAge);
}

/**
 * Header operations, after istio ValidateHTTPHeader*OperationName: request set/add may target
 * `:authority` but no other pseudo-header; remove and response operations may not touch Host or any
 * pseudo-header. Names are lowercase tokens; values carry no control characters.
 */
export function validateHeaderOps(report: ObjectReport, path: string, headers: unknown): void {
  if (!isObj(headers)) return;
  for (const direction of ['request', 'response'] as const) {
    const ops = headers[direction];
    if (!isObj(ops)) continue;
    const opsPath = childPath(path, direction);
    for (const op of ['set', 'add'] as const) {
      for (const [name, value] of entries(ops[op])) {
        const namePath = childPath(childPath(opsPath, op), name);
        checkHeaderOpName(report, namePath, name, direction === 'request' ? 'request-write' : 'other');
        if (typeof value === 'string' && /[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) report.error(namePath, `header ${JSON.stringify(name)}: value contains control characters`);
      }
    }
    arr(ops.remove).forEach((name, i) => {
      if (typeof name === 'string') checkHeaderOpName(report, childPath(childPath(opsPath, 'remove'), i), name, 'other');
    });
  }
}

function checkHeaderOpName(report: ObjectReport, path: string, name: string, use: 'request-write' | 'other'): void {
  if (name === '') report.error(path, 'header name must not be empty');
  else if (name.startsWith(':')) {
    if (!(use === 'request-write' && name === ':authority')) report.error(path, `header ${JSON.stringify(name)}: pseudo-headers cannot be modified`);
  } else if (use === 'other' && name.toLowerCase() === 'host') report.error(path, 'the Host header cannot be removed or set on responses');
  else checkHeaderName(report, path, name);
}

function validateL4Match(report: ObjectReport, path: string, match: Json): void {
  arr(match.destinationSubnets).forEach((subnet, i) => {
    if (typeof subnet === 'string' && !isCidrOrIp(subnet)) report.error(childPath(childPath(path, 'destinationSubnets'), i), `${JSON.stringify(subnet)} is not an IP address or CIDR`);
  });
  if (typeof match.sourceSubnet === 'string' && !isCidrOrIp(match.sourceSubnet)) report.error(childPath(path, 'sourceSubnet'), `${JSON.stringify(match.sourceSubnet)} is not an IP address or CIDR`);
  if (match.port !== undefined && match.port !== 0) checkPortNumber(report, childPath(path, 'port'), match.port);
  checkLabels(report, childPath(path, 'sourceLabels'), match.sourceLabels);
}

function validateTlsRoute(report: ObjectReport, path: string, route: Json, vsHosts: string[]): void {
  const matches = arr(route.match);
  if (matches.length === 0) report.error(childPath(path, 'match'), 'a TLS route needs at least one match');
  matches.forEach((match, i) => {
    if (!isObj(match)) return;
    const matchPath = childPath(childPath(path, 'match'), i);
    const sniHosts = arr(match.sniHosts);
    if (sniHosts.length === 0) report.error(childPath(matchPath, 'sniHosts'), 'a TLS match needs at least one sniHost');
    sniHosts.forEach((sni, j) => {
      if (typeof sni !== 'string') return;
      const sniPath = childPath(childPath(matchPath, 'sniHosts'), j);
      if (isIP(sni) !== 0) {
        report.warn(sniPath, `using an IP address (${JSON.stringify(sni)}) as SNI goes against the SNI spec; most clients do not support it`);
        return;
      }
      checkHost(report, sniPath, sni);
      if (vsHosts.length > 0 && !vsHosts.some((h) => hostCovers(h, sni))) {
        report.error(sniPath, `SNI host ${JSON.stringify(sni)} is not a subset of any of the VirtualService hosts`);
      }
    });
    validateL4Match(report, matchPath, match);
  });
  if (arr(route.route).length === 0) report.error(childPath(path, 'route'), 'a TLS route needs at least one route destination');
  validateDestinations(report, childPath(path, 'route'), arr(route.route), false);
}

function validateTcpRoute(report: ObjectReport, path: string, route: Json): void {
  arr(route.match).forEach((match, i) => {
    if (isObj(match)) validateL4Match(report, childPath(childPath(path, 'match'), i), match);
  });
  if (arr(route.route).length === 0) report.error(childPath(path, 'route'), 'a TCP route needs at least one route destination');
  validateDestinations(report, childPath(path, 'route'), arr(route.route), false);
}

/** Whether host pattern `pattern` (possibly `*.x`) covers `host` (possibly wildcard itself). */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === '*' || pattern === host) return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return host.endsWith(suffix) && (!host.startsWith('*') || host.slice(1).endsWith(suffix));
  }
  return false;
}
