/**
 * Validation entry points. `validateObject` = kind lookup + schema + semantic checks for one object;
 * `validateObjects` = that for each object plus cross-object checks. Both collect every finding
 * (STYLE.md §4) and never throw on bad input.
 */
import { validateCrossObject } from './cross-object.js';
import { lookupKind } from './kinds.js';
import type { KindInfo } from './kinds.js';
import type { Diagnostic, MeshObject, ValidationResult } from './object.js';
import { checkSchema } from './schema-check.js';
import { isK8sName, isK8sNamespace, isObj } from './validators/checks.js';
import { ObjectReport } from './validators/context.js';
import { SPEC_VALIDATORS } from './validators/index.js';

type KindCheck = { info: KindInfo } | { info?: undefined };

function checkKind(obj: MeshObject, report: ObjectReport): KindCheck {
  const found = lookupKind(obj.apiVersion, obj.kind);
  switch (found.status) {
    case 'supported':
      return { info: found.info };
    case 'unserved-version':
      report.error('apiVersion', `${found.info.kind} is not served in ${obj.apiVersion}; served: ${found.info.versions.map((v) => `${found.info.group}/${v}`).join(', ')}`);
      return {};
    case 'unsupported':
      report.warn('kind', `${obj.kind} (${obj.apiVersion}) is not supported by Trellis: not applied`);
      return {};
    case 'kubernetes':
      if (!found.informational) report.warn('kind', `${obj.kind} (${obj.apiVersion}) is not a mesh kind: not applied`);
      return {};
    default:
      report.error('kind', `unknown kind ${obj.kind} in apiVersion ${obj.apiVersion}`);
      return {};
  }
}

function checkMetadata(obj: MeshObject, info: KindInfo, report: ObjectReport): void {
  const { name, namespace } = obj.metadata ?? { name: '' };
  if (typeof name === 'string' && !(name === '' && info.nameOptional) && !isK8sName(name)) {
    report.error('metadata.name', `name ${JSON.stringify(name)} is not a valid DNS-1123 subdomain (lowercase letters, digits, "-" and ".")`);
  }
  if (typeof namespace === 'string' && !isK8sNamespace(namespace)) {
    report.error('metadata.namespace', `namespace ${JSON.stringify(namespace)} is not a valid DNS-1123 label`);
  }
  checkDryRunAnnotation(obj, report);
}

const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

/** Istio accepts `istio.io/dry-run` only on ALLOW/DENY AuthorizationPolicies, with a boolean value. */
function checkDryRunAnnotation(obj: MeshObject, report: ObjectReport): void {
  const annotations = obj.metadata?.annotations;
  if (!isObj(annotations) || annotations[DRY_RUN_ANNOTATION] === undefined) return;
  const path = `metadata.annotations[${JSON.stringify(DRY_RUN_ANNOTATION)}]`;
  if (obj.kind !== 'AuthorizationPolicy') {
    report.error(path, `annotation ${DRY_RUN_ANNOTATION} is supported only on AuthorizationPolicy`);
    return;
  }
  const action = isObj(obj.spec) && typeof obj.spec.action === 'string' ? obj.spec.action : 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY') report.error(path, `annotation ${DRY_RUN_ANNOTATION} supports only action ALLOW or DENY, not ${action}`);
  else if (!/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(String(annotations[DRY_RUN_ANNOTATION]))) {
    report.error(path, `annotation ${DRY_RUN_ANNOTATION} must be a boolean, got ${JSON.stringify(annotations[DRY_RUN_ANNOTATION])}`);
  }
}

function split(diagnostics: Diagnostic[]): ValidationResult {
  return {
    errors: diagnostics.filter((d) => d.severity === 'error'),
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
  };
}

/** Kind lookup and the ajv schema only (no semantic checks): the schema level of validation. */
export function validateObjectSchema(obj: MeshObject): ValidationResult {
  const report = new ObjectReport(obj);
  const { info } = checkKind(obj, report);
  if (!info) return split(report.diagnostics);
  return split([...report.diagnostics, ...checkSchema(obj, info)]);
}

/** All single-object checks: kind, metadata, schema, then the kind's semantic validator. */
export function validateObject(obj: MeshObject): ValidationResult {
  const report = new ObjectReport(obj);
  const { info } = checkKind(obj, report);
  if (!info) return split(report.diagnostics);
  checkMetadata(obj, info, report);
  const schemaErrors = checkSchema(obj, info);
  const validator = SPEC_VALIDATORS[info.kind];
  if (validator && isObj(obj.spec)) validator(obj.spec, report);
  return split(sortDiagnostics([...schemaErrors, ...report.diagnostics]));
}

export interface ValidateOptions {
  /** Replaces `validateObject` for the single-object checks (a render cache memoises them by content). */
  validateObject?: (obj: MeshObject) => ValidationResult;
}

/** Every object's own checks plus cross-object checks over the set (one cluster's objects). */
export function validateObjects(objs: readonly MeshObject[], options: ValidateOptions = {}): ValidationResult {
  const validateOne = options.validateObject ?? validateObject;
  const all: Diagnostic[] = [];
  for (const obj of objs) {
    const { errors, warnings } = validateOne(obj);
    all.push(...errors, ...warnings);
  }
  all.push(...validateCrossObject(objs));
  return split(sortDiagnostics(all));
}

export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.file.localeCompare(b.d.file) || a.d.line - b.d.line || a.d.col - b.d.col || a.i - b.i)
    .map(({ d }) => d);
}
