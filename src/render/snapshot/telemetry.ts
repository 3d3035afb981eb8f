import type { MeshObject } from '../../mesh/object.js';
import type { TelemetrySpec } from '../../mesh/api/index.js';
import type { ProxyIdentity, TelemetrySettings } from '../../mesh/snapshot.js';
import { hasLabels, labelsMatch } from './common.js';
import type { ClusterIndex } from './cluster-index.js';

/** Istio's default trace sampling (ProxyConfig tracing.sampling) when tracing is on. */
export const DEFAULT_TRACE_SAMPLING_PERCENT = 1;

function meshDefaults(index: ClusterIndex): TelemetrySettings {
  const mc = index.meshConfig;
  const tracing = (mc.defaultConfig as { tracing?: { sampling?: number } } | undefined)?.tracing;
  return {
    accessLog: typeof mc.accessLogFile === 'string' && mc.accessLogFile.length > 0,
    accessLogEncoding: mc.accessLogEncoding === 'JSON' ? 'JSON' : 'TEXT',
    metrics: true,
    tracingSamplingPercent: mc.enableTracing === false ? 0 : (tracing?.sampling ?? DEFAULT_TRACE_SAMPLING_PERCENT),
  };
}

function applyTelemetry(settings: TelemetrySettings, telemetry: MeshObject<TelemetrySpec> | undefined): void {
  if (!telemetry) return;
  for (const log of telemetry.spec.accessLogging ?? []) {
    if (log.disabled === true) settings.accessLog = false;
    else if (log.disabled === false || (log.providers && log.providers.length > 0)) settings.accessLog = true;
  }
  for (const metrics of telemetry.spec.metrics ?? []) {
    for (const override of metrics.overrides ?? []) {
      const metric = override.match?.metric;
      // only an override of every metric turns the proxy's metrics off or on as a whole
      if ((metric === undefined || metric === 'ALL_METRICS') && override.match?.customMetric === undefined && override.disabled !== undefined) {
        settings.metrics = !override.disabled;
      }
    }
  }
  for (const tracing of telemetry.spec.tracing ?? []) {
    if (tracing.disableSpanReporting === true) settings.tracingSamplingPercent = 0;
    else if (tracing.randomSamplingPercentage !== undefined) settings.tracingSamplingPercent = tracing.randomSamplingPercentage;
  }
}

/** meshConfig defaults, then Telemetry resources: root namespace, the proxy's namespace, then the one selecting it. */
export function buildTelemetrySettings(index: ClusterIndex, proxy: ProxyIdentity): TelemetrySettings {
  const settings = meshDefaults(index);
  const root = index.mesh.rootNamespace;
  applyTelemetry(settings, (index.telemetries.get(root) ?? []).find((t) => !hasLabels(t.spec.selector) && !t.spec.targetRefs?.length));
  const own = index.telemetries.get(proxy.namespace) ?? [];
  if (proxy.namespace !== root) applyTelemetry(settings, own.find((t) => !hasLabels(t.spec.selector) && !t.spec.targetRefs?.length));
  applyTelemetry(settings, own.find((t) => hasLabels(t.spec.selector) && labelsMatch(t.spec.selector!.matchLabels, proxy.labels)));
  return settings;
}
