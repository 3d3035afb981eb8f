/** Telemetry semantics (istio ValidateTelemetry and the CRD's CEL rules). */
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';
import { arr, checkMinDuration, checkWorkloadSelector, checkSelectorXorTargetRefs, entries, has, isObj } from './checks.js';
import type { Json } from './checks.js';

export function validateTelemetry(spec: Json, report: ObjectReport): void {
  checkSelectorXorTargetRefs(report, spec);
  checkWorkloadSelector(report, 'spec.selector', spec.selector);
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
    for (const [tag, value] of entries(tracing.customTags)) {
      if (!isObj(value)) continue;
      const set = ['literal', 'environment', 'header', 'formatter'].filter((k) => has(value, k));
      if (set.length !== 1) report.error(childPath(`spec.tracing[${i}].customTags`, tag), `custom tag ${JSON.stringify(tag)} needs exactly one of literal, environment, header or formatter`);
    }
  });
}
