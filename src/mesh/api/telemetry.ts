import type { PolicyTargetReference, WorkloadSelector } from './common.js';

export interface ProviderRef {
  name: string;
}
export interface TelemetrySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  tracing?: Array<{
    match?: { mode?: 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER' };
    providers?: ProviderRef[];
    randomSamplingPercentage?: number;
    disableSpanReporting?: boolean;
    customTags?: Record<string, unknown>;
    useRequestIdForTraceSampling?: boolean;
    enableIstioTags?: boolean;
    disableContextPropagation?: boolean;
  }>;
  metrics?: Array<{
    providers?: ProviderRef[];
    overrides?: Array<{
      match?: { metric?: string; customMetric?: string; mode?: 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER' };
      disabled?: boolean;
      tagOverrides?: Record<string, { operation?: 'UPSERT' | 'REMOVE'; value?: string }>;
    }>;
    reportingInterval?: string;
  }>;
  accessLogging?: Array<{
    match?: { mode?: 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER' };
    providers?: ProviderRef[];
    disabled?: boolean;
    filter?: { expression?: string };
  }>;
}
