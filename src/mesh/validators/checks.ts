/**
 * Field checks shared by the kind validators, after istio pkg/config/validation. Every helper is
 * defensive about types: the schema pass reports type errors, these only judge well-typed values.
 */
import { isIP } from 'node:net';
import { RE2JS } from 're2js';
import { parseDuration } from '../duration.js';
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';

export type Json = Record<string, unknown>;

export function isObj(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function entries(value: unknown): Array<[string, unknown]> {
  return isObj(value) ? Object.entries(value) : [];
}

export function has(o: Json, key: string): boolean {
  return o[key] !== undefined && o[key] !== null;
}

/** Throws nothing; returns the RE2 error text, or undefined when `pattern` compiles under RE2. */
export function re2Error(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^error parsing regexp: /, '');
  }
}

/** Istio approximates Envoy's RE2 program-size limit by pattern length. */
export const MAX_REGEX_LENGTH = 1024;

export function checkRegex(report: ObjectReport, path: string, pattern: unknown): void {
  if (typeof pattern !== 'string') return;
  if (pattern === '') {
    report.error(path, 'regex must not be empty');
    return;
  }
  if (pattern.length > MAX_REGEX_LENGTH) {
    report.error(path, `regex is too large: ${pattern.length} characters, the limit is ${MAX_REGEX_LENGTH}`);
    return;
  }
  const error = re2Error(pattern);
  if (error !== undefined) report.error(path, `regex ${JSON.stringify(pattern)} is not valid RE2: ${error}`);
}

/** StringMatch: at most one of exact/prefix/regex; a prefix must not be empty; regexes must be RE2. */
export function checkStringMatch(report: ObjectReport, path: string, match: unknown, opts: { allowEmpty?: boolean } = {}): void {
  if (!isObj(match)) return;
  const set = ['exact', 'prefix', 'regex'].filter((k) => has(match, k));
  if (set.length > 1) report.error(path, `only one of exact, prefix or regex may be set (found ${set.join(', ')})`);
  if (set.length === 0 && !opts.allowEmpty) report.error(path, 'one of exact, prefix or regex is required');
  if (match.prefix === '') report.error(childPath(path, 'prefix'), 'prefix string match must not be empty');
  if (has(match, 'regex')) checkRegex(report, childPath(path, 'regex'), match.regex);
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Header names in matches and header operations: RFC 7230 tokens, lowercase (Envoy keys are lowercase). */
export function checkHeaderName(report: ObjectReport, path: string, name: string): void {
  if (name === '') report.error(path, 'header name must not be empty');
  else if (!HEADER_NAME.test(name)) report.error(path, `header name ${JSON.stringify(name)} is not a valid HTTP header name`);
  else if (name !== name.toLowerCase()) report.error(path, `header name ${JSON.stringify(name)} must be lowercase`);
}

const DNS_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(\*|\*?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const K8S_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Istio's IsDNS1123Label (it accepts upper case, as labels.IsDNS1123Label does). */
export function isDnsLabel(value: string): boolean {
  return value.length > 0 && value.length <= 63 && DNS_LABEL.test(value);
}

/** Kubernetes object names (DNS-1123 subdomain, lowercase). */
export function isK8sName(value: string): boolean {
  return value.length > 0 && value.length <= 253 && value.split('.').every((l) => l.length <= 63 && K8S_LABEL.test(l));
}

export function isK8sNamespace(value: string): boolean {
  return value.length > 0 && value.length <= 63 && K8S_LABEL.test(value);
}

/** Istio's ValidateWildcardDomain: a wildcard is allowed only as (a prefix of) the first label. */
export function hostError(host: string): string | undefined {
  if (host === '') return 'host must not be empty';
  if (host.length > 255) return `host ${JSON.stringify(host)} is longer than 255 characters`;
  if (host === '*') return undefined;
  const [first, ...rest] = host.split('.');
  if (first.length > 63 || !WILDCARD_LABEL.test(first) || first === '') {
    return `host ${JSON.stringify(host)} is invalid: a wildcard is only allowed as the prefix of the first label (e.g. "*.example.com")`;
  }
  for (const label of rest) {
    if (!isDnsLabel(label)) return `host ${JSON.stringify(host)} is invalid: label ${JSON.stringify(label)} is not a DNS-1123 label`;
  }
  return undefined;
}

export function checkHost(report: ObjectReport, path: string, host: unknown, opts: { allowIp?: boolean } = {}): void {
  if (typeof host !== 'string') return;
  if (opts.allowIp && isIP(host) !== 0) return;
  const error = hostError(host);
  if (error) report.error(path, error);
}

export function isCidrOrIp(value: string): boolean {
  const [ip, bits, ...more] = value.split('/');
  const family = isIP(ip);
  if (family === 0 || more.length > 0) return false;
  if (bits === undefined) return true;
  if (!/^[0-9]+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export function checkPortNumber(report: ObjectReport, path: string, port: unknown): void {
  if (typeof port !== 'number') return;
  if (!Number.isInteger(port) || port < 1 || port > 65535) report.error(path, `port number ${port} must be in 1..65535`);
}

export function checkPercentage(report: ObjectReport, path: string, value: unknown): void {
  if (typeof value !== 'number') return;
  if (value < 0 || value > 100) report.error(path, `percentage ${value} must be in 0..100`);
}

/** Durations the CRDs bound with `duration(self) >= duration('1ms')`. Syntax is checked by the schema. */
export function checkMinDuration(report: ObjectReport, path: string, value: unknown, minMs = 1): void {
  if (typeof value !== 'string') return;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    return; // the schema's duration format reports bad syntax
  }
  if (ms < minMs) report.error(path, `duration ${JSON.stringify(value)} must be at least ${minMs}ms`);
}

export function checkLabels(report: ObjectReport, path: string, labels: unknown): void {
  for (const [key, value] of entries(labels)) {
    const keyPath = childPath(path, key);
    if (key === '' || key.includes('*')) report.error(keyPath, `label key ${JSON.stringify(key)} is invalid (empty or wildcard)`);
    if (typeof value === 'string' && value.includes('*')) report.error(keyPath, `label value ${JSON.stringify(value)} must not contain a wildcard`);
  }
}

/** A workload selector: labels as checkLabels, and a warning when it selects by no label at all. */
export function checkWorkloadSelector(report: ObjectReport, path: string, selector: unknown, labelsField = 'matchLabels'): void {
  if (!isObj(selector)) return;
  checkLabels(report, childPath(path, labelsField), selector[labelsField]);
  if (entries(selector[labelsField]).length === 0) report.warn(path, 'workload selector specified without labels: it selects every workload in the namespace');
}

export function checkSelectorXorTargetRefs(report: ObjectReport, spec: Json): void {
  const set = ['selector', 'targetRef', 'targetRefs'].filter((k) => has(spec, k));
  if (set.length > 1) report.error(`spec.${set[1]}`, `only one of selector, targetRef or targetRefs may be set (found ${set.join(', ')})`);
}

/** After istio validateExportTo: ".", "*" or namespaces, no duplicates; "~" (nobody) only for ServiceEntry. */
export function checkExportTo(report: ObjectReport, path: string, exportTo: unknown, opts: { allowNone?: boolean; namespace?: string } = {}): void {
  const values = arr(exportTo).filter((v): v is string => typeof v === 'string');
  const seen = new Set<string>();
  values.forEach((value, i) => {
    const itemPath = childPath(path, i);
    const key = value === '.' && opts.namespace ? opts.namespace : value;
    if (seen.has(key)) report.error(itemPath, `duplicate exportTo entry ${JSON.stringify(value)}${key !== value ? ` (. is namespace ${key})` : ''}`);
    seen.add(key);
    if (value === '*' || value === '.') return;
    if (value === '~') {
      if (!opts.allowNone) report.error(itemPath, 'exportTo "~" (export to nobody) is allowed only in a ServiceEntry');
      return;
    }
    if (!isK8sNamespace(value)) report.error(itemPath, `exportTo ${JSON.stringify(value)} must be ".", "*" or a namespace name`);
  });
  if (values.includes('*') && values.length > 1) report.error(path, 'exportTo "*" must not be combined with other values');
  if (values.includes('~') && values.length > 1) report.error(path, 'exportTo "~" must not be combined with other values');
}

const PROTOCOLS = new Set(['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'REDIS', 'MYSQL', 'TCP', 'TLS', 'UDP', 'HBONE']);

export function checkProtocol(report: ObjectReport, path: string, protocol: unknown): void {
  if (typeof protocol !== 'string') return;
  if (!PROTOCOLS.has(protocol.toUpperCase())) {
    report.error(path, `unrecognized protocol ${JSON.stringify(protocol)} (one of ${[...PROTOCOLS].join(', ')})`);
  }
}

export function isTlsProtocol(protocol: unknown): boolean {
  return typeof protocol === 'string' && ['HTTPS', 'TLS'].includes(protocol.toUpperCase());
}
