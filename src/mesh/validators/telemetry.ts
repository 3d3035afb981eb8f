/** Telemetry semantics (istio ValidateTelemetry and the CRD's CEL rules). */
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';
import { arr, checkMinDuration, checkWorkloadSelector, checkSelectorXorTargetRefs, entries, has, isObj } from './checks.js';
import type { Json } from './checks.js';
import { checkTargetRefs } from './security.js';

export function validateTelemetry(spec: Json, report: ObjectReport): void {
  checkSelectorXorTargetRefs(report, spec);
  checkWorkloadSelector(report, 'spec.selector', spec.selector);
  checkTargetRefs(report, spec);
  if (arr(spec.tracing).length > 1) report.warn('spec.tracing', 'multiple tracing entries are not supported (as in Istio): only the first applies');
  for (const section of ['tracing', 'metrics', 'accessLogging']) {
    arr(spec[section]).forEach((entry, i) => {
      if (!isObj(entry)) return;
      arr(entry.providers).forEach((provider, j) => {
        if (isObj(provider) && provider.name === '') report.error(`spec.${section}[${i}].providers[${j}].name`, 'provider name must not be empty');
      });
    });
  }
  arr(spec.metrics).forEach((metrics, i) => {
    if (!isObj(metrics)) return;
    checkMinDuration(report, `spec.metrics[${i}].reportingInterval`, metrics.reportingInterval);
    arr(metrics.overrides).forEach((override, j) => {
      if (!isObj(override)) return;
      const path = `spec.metrics[${i}].overrides[${j}]`;
      if (isObj(override.match) && override.match.customMetric === '') report.error(`${path}.match.customMetric`, 'customMetric must not be empty');
      if (isObj(override.match) && has(override.match, 'metric') && has(override.match, 'customMetric')) {
        report.error(`${path}.match`, 'match may set only one of metric or customMetric');
      }
      for (const [tag, op] of entries(override.tagOverrides)) {
        if (!isObj(op)) continue;
        const tagPath = childPath(`${path}.tagOverrides`, tag);
        const operation = op.operation ?? 'UPSERT';
        if (operation === 'UPSERT' && !op.value) report.error(tagPath, `tag override ${JSON.stringify(tag)}: UPSERT needs a non-empty value`);
        if (operation === 'REMOVE' && has(op, 'value')) report.error(tagPath, `tag override ${JSON.stringify(tag)}: REMOVE must not have a value`);
      }
    });
  });
  arr(spec.tracing).forEach((tracing, i) => {
    if (!isObj(tracing)) return;
    if (arr(tracing.providers).length > 1) report.warn(`spec.tracing[${i}].providers`, 'multiple tracing providers are not supported (as in Istio)');
    for (const [tag, value] of entries(tracing.customTags)) {
      const tagPath = childPath(`spec.tracing[${i}].customTags`, tag);
      if (tag === '') report.error(tagPath, 'custom tag name must not be empty');
      if (!isObj(value)) continue;
      const set = ['literal', 'environment', 'header', 'formatter'].filter((k) => has(value, k));
      if (set.length > 1) report.error(tagPath, `custom tag ${JSON.stringify(tag)} may set only one of literal, environment, header or formatter (found ${set.join(', ')})`);
      if (set.length === 0) report.warn(tagPath, `custom tag ${JSON.stringify(tag)} sets none of literal, environment, header or formatter: it adds nothing`);
      if (isObj(value.literal) && value.literal.value === '') report.error(`${tagPath}.literal.value`, 'literal tag value must not be empty');
      if (isObj(value.header) && value.header.name === '') report.error(`${tagPath}.header.name`, 'header tag name must not be empty');
      if (isObj(value.environment) && value.environment.name === '') report.error(`${tagPath}.environment.name`, 'environment tag name must not be empty');
    }
  });
}
