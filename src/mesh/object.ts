/** Where a value came from in the config repository: 1-based line and column. */
export interface SourceRef {
  file: string;
  line: number;
  col: number;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

/** One Kubernetes-style document as loaded from the repository, with its source position. */
export interface MeshObject<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: unknown;
  /** Position of the document; `fieldSources` maps a JSON-pointer-like path ("spec.http[0].route") to its position. */
  source?: SourceRef;
  fieldSources?: Record<string, SourceRef>;
  /** Top-level fields other than apiVersion/kind/metadata/spec/status, kept so validation can reject them. */
  extraFields?: Record<string, unknown>;
}

export type Severity = 'error' | 'warning';

/** Every validation finding names file:line:col, the object and the field path (STYLE.md §4). */
export interface Diagnostic {
  severity: Severity;
  file: string;
  line: number;
  col: number;
  kind?: string;
  /** `namespace/name`, or `name` for cluster-scoped objects. */
  name?: string;
  /** Dotted path with indexes, e.g. `spec.http[0].route[1].weight`. */
  fieldPath?: string;
  message: string;
}

export interface ValidationResult {
  errors: Diagnostic[];
  warnings: Diagnostic[];
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.col}`;
  const obj = d.kind ? ` ${d.kind}${d.name ? ` ${d.name}` : ''}` : '';
  const field = d.fieldPath ? ` ${d.fieldPath}:` : '';
  return `${where}: ${d.severity}:${obj}${field} ${d.message}`;
}
