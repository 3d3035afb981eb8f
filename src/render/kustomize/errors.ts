import { formatDiagnostic, type Diagnostic } from '../../mesh/object.js';

/** Why a render failed; stable strings, usable as metric labels. */
export type RenderErrorCode =
  | 'PathEscape'
  | 'NotFound'
  | 'TooLarge'
  | 'YamlSyntax'
  | 'UnsupportedField'
  | 'InvalidField'
  | 'PatchNoMatch'
  | 'PatchFailed'
  | 'DuplicateResource'
  | 'Cycle'
  | 'Profile'
  | 'Repository';

export interface RenderErrorLocation {
  file: string;
  line?: number;
  col?: number;
  kind?: string;
  name?: string;
  field?: string;
}

/**
 * A render (kustomize build, profile merge, repository load) that cannot produce output.
 * Carries one or more diagnostics, each naming file:line, object and field where known.
 */
export class RenderError extends Error {
  readonly code: RenderErrorCode;
  readonly diagnostics: Diagnostic[];

  constructor(code: RenderErrorCode, diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'RenderError';
    this.code = code;
    this.diagnostics = diagnostics;
  }

  static at(code: RenderErrorCode, where: RenderErrorLocation, message: string): RenderError {
    return new RenderError(code, [diagnosticAt(where, message)]);
  }
}

export function diagnosticAt(where: RenderErrorLocation, message: string, severity: Diagnostic['severity'] = 'error'): Diagnostic {
  const d: Diagnostic = { severity, file: where.file, line: where.line ?? 1, col: where.col ?? 1, message };
  if (where.kind) d.kind = where.kind;
  if (where.name) d.name = where.name;
  if (where.field) d.fieldPath = where.field;
  return d;
}

/** Every diagnostic of `err` if it is a RenderError, else one describing the unexpected failure at `file`. */
export function diagnosticsOf(err: unknown, file: string): Diagnostic[] {
  if (err instanceof RenderError) return err.diagnostics;
  const message = err instanceof Error ? err.message : String(err);
  return [diagnosticAt({ file }, message)];
}
