/** Istio StringMatch: exactly one of exact / prefix / regex (RE2). `{}` in header matches means presence. */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
  /** Sidecar and ServiceEntry `workloadSelector` (Istio's networking WorkloadSelector) name the field `labels`. */
  labels?: Record<string, string>;
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** Istio durations are strings like "1.5s", "100ms", "1h". */
export type Duration = string;
export interface Percent {
  value?: number;
}
