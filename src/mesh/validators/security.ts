/** PeerAuthentication, AuthorizationPolicy and RequestAuthentication semantics, after istio pkg/config/validation. */
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';
import { arr, checkMinDuration, checkSelectorXorTargetRefs, checkWorkloadSelector, entries, has, isCidrOrIp, isObj } from './checks.js';
import type { Json } from './checks.js';

export function validatePeerAuthentication(spec: Json, report: ObjectReport): void {
  const selector = isObj(spec.selector) ? spec.selector : undefined;
  checkWorkloadSelector(report, 'spec.selector', selector);
  const portLevel = entries(spec.portLevelMtls);
  if (isObj(spec.portLevelMtls) && portLevel.length === 0) report.error('spec.portLevelMtls', 'portLevelMtls, if set, must have at least one port');
  if (portLevel.length > 0) {
    const hasLabels = selector !== undefined && entries(selector.matchLabels).length > 0;
    if (!hasLabels) report.error('spec.portLevelMtls', 'portLevelMtls needs a workload selector with matchLabels');
  }
  for (const [port] of portLevel) {
    const n = Number(port);
    if (!/^[0-9]+$/.test(port) || n < 1 || n > 65535) report.error(childPath('spec.portLevelMtls', port), `port ${JSON.stringify(port)} must be a number in 1..65535`);
  }
}

/** Keys AuthorizationPolicy `when` conditions accept (istio security/pkg/authz attribute names). */
const EXACT_CONDITION_KEYS = new Set([
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'request.auth.principal', 'request.auth.audiences',
  'request.auth.presenter', 'destination.ip', 'destination.port', 'connection.sni', 'source.serviceAccount',
]);
const INDEXED_CONDITION_KEY = /^(request\.headers|request\.auth\.claims)\[[^\]]+\](\[[^\]]+\])*$/;

/** Source fields that also apply to TCP traffic (the rest need HTTP). */
const TCP_SOURCE_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'];
/** Attributes the CUSTOM action cannot match on (istio ValidateAuthorizationPolicy). */
const CUSTOM_UNSUPPORTED_SOURCE = ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'];

export function validateAuthorizationPolicy(spec: Json, report: ObjectReport): void {
  checkSelectorXorTargetRefs(report, spec);
  checkWorkloadSelector(report, 'spec.selector', spec.selector);
  checkTargetRefs(report, spec);
  const action = spec.action ?? 'ALLOW';
  if (action === 'CUSTOM' && !has(spec, 'provider')) report.error('spec.action', 'action CUSTOM needs a provider');
  if ((action === 'CUSTOM' || action === 'DENY') && spec.rules === undefined) {
    report.error('spec.action', `${String(action)} action without rules is never triggered; add an empty rule {} to apply it to every request`);
  }
  if (action === 'CUSTOM') {
    arr(spec.rules).forEach((rule, i) => {
      if (!isObj(rule)) return;
      arr(rule.from).forEach((from, j) => {
        if (!isObj(from) || !isObj(from.source)) return;
        for (const field of CUSTOM_UNSUPPORTED_SOURCE) {
          if (arr(from.source[field]).length > 0) report.error(`spec.rules[${i}].from[${j}].source.${field}`, `${field} is not supported with action CUSTOM`);
        }
      });
      arr(rule.when).forEach((condition, j) => {
        if (!isObj(condition) || typeof condition.key !== 'string') return;
        const key = condition.key;
        if (['source.namespace', 'source.serviceAccount', 'source.principal'].includes(key) || key.startsWith('request.auth.')) {
          report.error(`spec.rules[${i}].when[${j}].key`, `condition key ${JSON.stringify(key)} is not supported with action CUSTOM`);
        }
      });
    });
  }
  if (action !== 'CUSTOM' && has(spec, 'provider')) report.error('spec.provider', `provider is allowed only with action CUSTOM (action is ${String(action)})`);
  if (isObj(spec.provider) && !spec.provider.name) report.error('spec.provider.name', 'provider name must not be empty');

  arr(spec.rules).forEach((rule, i) => {
    if (!isObj(rule)) return;
    const path = `spec.rules[${i}]`;
    if (Array.isArray(rule.from) && rule.from.length === 0) report.error(`${path}.from`, 'from must not be an empty list (omit it to match any source)');
    if (Array.isArray(rule.to) && rule.to.length === 0) report.error(`${path}.to`, 'to must not be an empty list (omit it to match any operation)');
    if (action === 'DENY') warnHttpOnlyDeny(report, path, rule);
    arr(rule.from).forEach((from, j) => {
      const fromPath = `${path}.from[${j}]`;
      if (!isObj(from) || !isObj(from.source)) {
        report.error(`${fromPath}.source`, 'from needs a source');
        return;
      }
      validateSource(report, `${fromPath}.source`, from.source);
    });
    arr(rule.to).forEach((to, j) => {
      const toPath = `${path}.to[${j}]`;
      if (!isObj(to) || !isObj(to.operation)) {
        report.error(`${toPath}.operation`, 'to needs an operation');
        return;
      }
      validateOperation(report, `${toPath}.operation`, to.operation);
    });
    arr(rule.when).forEach((condition, j) => {
      if (!isObj(condition)) return;
      const whenPath = `${path}.when[${j}]`;
      const key = condition.key;
      if (typeof key === 'string' && !EXACT_CONDITION_KEYS.has(key) && !INDEXED_CONDITION_KEY.test(key) && !key.startsWith('experimental.envoy.filters.')) {
        report.error(`${whenPath}.key`, `unknown condition key ${JSON.stringify(key)}`);
      }
      if (arr(condition.values).length === 0 && arr(condition.notValues).length === 0) {
        report.error(whenPath, 'a condition needs values or notValues');
      }
      if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') {
        for (const field of ['values', 'notValues']) {
          arr(condition[field]).forEach((v, k) => {
            if (typeof v === 'string' && !isCidrOrIp(v)) report.error(`${whenPath}.${field}[${k}]`, `${JSON.stringify(v)} is not an IP address or CIDR`);
          });
        }
      }
      if (key === 'destination.port') {
        for (const field of ['values', 'notValues']) {
          arr(condition[field]).forEach((v, k) => checkPortString(report, `${whenPath}.${field}[${k}]`, v));
        }
      }
    });
  });
}

/**
 * A DENY rule that matches only on HTTP attributes denies all TCP traffic in its scope (a TCP
 * connection cannot be checked for them). Istio warns; so do we.
 */
function warnHttpOnlyDeny(report: ObjectReport, path: string, rule: Json): void {
  const sources = arr(rule.from).filter(isObj).map((f) => f.source).filter(isObj);
  const operations = arr(rule.to).filter(isObj).map((t) => t.operation).filter(isObj);
  const tcpInFrom = sources.some((s) => TCP_SOURCE_FIELDS.some((k) => has(s, k)));
  const tcpInTo = operations.some((o) => has(o, 'ports') || has(o, 'notPorts'));
  const fromExists = sources.length > 0;
  const toExists = operations.length > 0;
  if ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo)) {
    report.warn(path, 'this DENY rule uses only HTTP attributes, so it denies all traffic to TCP ports in its scope; name the ports explicitly');
  }
}

export function checkTargetRefs(report: ObjectReport, spec: Json): void {
  const refs: Array<[string, unknown]> = [['spec.targetRef', spec.targetRef], ...arr(spec.targetRefs).map((r, i): [string, unknown] => [`spec.targetRefs[${i}]`, r])];
  for (const [path, ref] of refs) {
    if (!isObj(ref)) continue;
    if (typeof ref.namespace === 'string' && ref.namespace !== '') report.error(`${path}.namespace`, 'targetRef namespace must not be set: cross-namespace references are not supported');
    const group = typeof ref.group === 'string' && ref.group !== '' ? ref.group : 'core';
    const allowed = ALLOWED_TARGET_REFS.some(([g, k]) => g === group && k === ref.kind);
    if (!allowed) report.error(path, `targetRef must point to a ${ALLOWED_TARGET_REFS.map(([g, k]) => `${g}/${k}`).join(', ')}; got ${group}/${String(ref.kind)}`);
  }
}

const ALLOWED_TARGET_REFS: Array<[string, string]> = [
  ['core', 'Service'],
  ['networking.istio.io', 'ServiceEntry'],
  ['gateway.networking.k8s.io', 'Gateway'],
  ['gateway.networking.k8s.io', 'GatewayClass'],
];

function validateSource(report: ObjectReport, path: string, source: Json): void {
  const fields = Object.keys(source).filter((k) => arr(source[k]).length > 0);
  if (fields.length === 0) report.error(path, 'source must not be empty');
  const hasSa = has(source, 'serviceAccounts') || has(source, 'notServiceAccounts');
  const conflicting = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].filter((k) => has(source, k));
  if (hasSa && conflicting.length > 0) {
    report.error(childPath(path, 'serviceAccounts'), `serviceAccounts cannot be combined with ${conflicting.join(', ')}`);
  }
  for (const [field, values] of entries(source)) {
    arr(values).forEach((value, i) => {
      const valuePath = childPath(childPath(path, field), i);
      if (value === '') report.error(valuePath, 'empty value is not allowed');
      if (/ipblocks$/i.test(field) && typeof value === 'string' && !isCidrOrIp(value)) report.error(valuePath, `${JSON.stringify(value)} is not an IP address or CIDR`);
      if (/serviceaccounts$/i.test(field) && typeof value === 'string' && value.split('/').length > 2) {
        report.error(valuePath, `service account ${JSON.stringify(value)} must be "<name>" or "<namespace>/<name>"`);
      }
    });
  }
}

function validateOperation(report: ObjectReport, path: string, operation: Json): void {
  const fields = Object.keys(operation).filter((k) => arr(operation[k]).length > 0);
  if (fields.length === 0) report.error(path, 'operation must not be empty');
  for (const [field, values] of entries(operation)) {
    arr(values).forEach((value, i) => {
      const valuePath = childPath(childPath(path, field), i);
      if (value === '') report.error(valuePath, 'empty value is not allowed');
      if (/ports$/i.test(field)) checkPortString(report, valuePath, value);
    });
  }
}

function checkPortString(report: ObjectReport, path: string, value: unknown): void {
  if (typeof value !== 'string') return;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > 65535) report.error(path, `port ${JSON.stringify(value)} must be a number in 1..65535`);
}

export function validateRequestAuthentication(spec: Json, report: ObjectReport): void {
  checkSelectorXorTargetRefs(report, spec);
  checkWorkloadSelector(report, 'spec.selector', spec.selector);
  checkTargetRefs(report, spec);
  const issuers = new Map<string, number>();
  arr(spec.jwtRules).forEach((rule, i) => {
    if (!isObj(rule)) return;
    const path = `spec.jwtRules[${i}]`;
    if (!rule.issuer && !rule.jwksUri) report.error(`${path}.issuer`, 'issuer or jwksUri must be a non-empty string');
    arr(rule.audiences).forEach((a, j) => {
      if (a === '') report.error(`${path}.audiences[${j}]`, 'audience must be a non-empty string');
    });
    for (const field of ['fromParams', 'fromCookies']) {
      arr(rule[field]).forEach((v, j) => {
        if (v === '') report.error(`${path}.${field}[${j}]`, `${field} entries must be non-empty strings`);
      });
    }
    if (typeof rule.jwks === 'string' && !isJwks(rule.jwks)) report.error(`${path}.jwks`, 'jwks must be a JSON Web Key Set ({"keys": [...]}) or a single JSON Web Key');
    if (typeof rule.issuer === 'string' && rule.issuer !== '') {
      if (issuers.has(rule.issuer)) report.warn(`${path}.issuer`, `issuer ${JSON.stringify(rule.issuer)} is repeated (also jwtRules[${issuers.get(rule.issuer)}])`);
      else issuers.set(rule.issuer, i);
    }
    const jwksSources = ['jwksUri', 'jwks_uri', 'jwks'].filter((k) => has(rule, k));
    if (jwksSources.length > 1) report.error(`${path}.${jwksSources[1]}`, `only one of jwksUri or jwks may be set (found ${jwksSources.join(', ')})`);
    for (const field of ['jwksUri', 'jwks_uri']) {
      const uri = rule[field];
      if (typeof uri !== 'string') continue;
      let ok = false;
      try {
        ok = ['http:', 'https:'].includes(new URL(uri).protocol);
      } catch {
        ok = false;
      }
      if (!ok) report.error(`${path}.${field}`, `${field} ${JSON.stringify(uri)} must be an http or https URL`);
    }
    arr(rule.fromHeaders).forEach((header, j) => {
      if (isObj(header) && header.name === '') report.error(`${path}.fromHeaders[${j}].name`, 'header name must not be empty');
    });
    arr(rule.outputClaimToHeaders).forEach((entry, j) => {
      if (isObj(entry) && (entry.header === '' || entry.claim === '')) report.error(`${path}.outputClaimToHeaders[${j}]`, 'header and claim must be non-empty strings');
      else if (isObj(entry) && typeof entry.header === 'string' && !/^[-_A-Za-z0-9]+$/.test(entry.header)) {
        report.error(`${path}.outputClaimToHeaders[${j}].header`, `header ${JSON.stringify(entry.header)} is not a valid header name`);
      }
    });
    checkMinDuration(report, `${path}.timeout`, rule.timeout);
  });
}

function isJwks(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return isObj(value) && (Array.isArray(value.keys) || typeof value.kty === 'string');
  } catch {
    return false;
  }
}
