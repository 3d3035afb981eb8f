/** telemetry.istio.io Telemetry (v1 and v1alpha1 share one schema). */
import { policyTargetRef, policyTargetRefs, workloadSelector } from './common.js';
import { bool, duration, list, mapOf, obj, oneOfValues, percent, str } from './dsl.js';
import type { Schema } from './dsl.js';

const mode = oneOfValues('CLIENT_AND_SERVER', 'CLIENT', 'SERVER');
const providers = list(obj({ name: str }, ['name']));

const customTag = obj({
  literal: obj({ value: str }, ['value']),
  environment: obj({ name: str, defaultValue: str }, ['name']),
  header: obj({ name: str, defaultValue: str }, ['name']),
  formatter: obj({ value: str }, ['value']),
});

export const telemetrySpec: Schema = obj({
  selector: workloadSelector,
  targetRef: policyTargetRef,
  targetRefs: policyTargetRefs,
  tracing: list(
    obj({
      match: obj({ mode }),
      providers,
      randomSamplingPercentage: percent,
      disableSpanReporting: bool,
      customTags: mapOf(customTag),
      useRequestIdForTraceSampling: bool,
      enableIstioTags: bool,
      disableContextPropagation: bool,
    }),
  ),
  metrics: list(
    obj({
      providers,
      overrides: list(
        obj({
          match: obj({
            metric: oneOfValues(
              'ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE',
              'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES',
              'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES',
            ),
            customMetric: str,
            mode,
          }),
          disabled: bool,
          tagOverrides: mapOf(obj({ operation: oneOfValues('UPSERT', 'REMOVE'), value: str })),
        }),
      ),
      reportingInterval: duration,
    }),
  ),
  accessLogging: list(
    obj({
      match: obj({ mode }),
      providers,
      disabled: bool,
      filter: obj({ expression: str }),
    }),
  ),
});
