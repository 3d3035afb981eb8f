/**
 * Helpers for the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
 */

/** Content-Type of a /stats/prometheus answer. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  if (!/[\\"\n]/.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and line feed (quotes stay as they are). */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Formats a sample value or bucket bound; Prometheus spells infinities `+Inf`/`-Inf`. */
export function formatNumber(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}

/** `name="value",…` for ordered label pairs, values escaped; no braces. */
export function formatLabels(pairs: ReadonlyArray<readonly [string, string]>): string {
  let out = '';
  for (let i = 0; i < pairs.length; i++) {
    if (i > 0) out += ',';
    out += `${pairs[i][0]}="${escapeLabelValue(pairs[i][1])}"`;
  }
  return out;
}

/** The `# HELP` and `# TYPE` header of one metric family. */
export function familyHeader(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}
