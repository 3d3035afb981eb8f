import { fieldSource } from '../load.js';
import type { Diagnostic, MeshObject, Severity } from '../object.js';

/** Collects findings for one object; every finding is placed at its field's source position. */
export class ObjectReport {
  readonly diagnostics: Diagnostic[] = [];
  readonly name: string;

  constructor(readonly obj: MeshObject) {
    this.name = displayName(obj);
  }

  error(fieldPath: string, message: string): void {
    this.add('error', fieldPath, message);
  }

  warn(fieldPath: string, message: string): void {
    this.add('warning', fieldPath, message);
  }

  private add(severity: Severity, fieldPath: string, message: string): void {
    const at = fieldSource(this.obj, fieldPath);
    this.diagnostics.push({
      severity,
      file: at.file,
      line: at.line,
      col: at.col,
      kind: this.obj.kind,
      name: this.name,
      fieldPath: fieldPath || undefined,
      message,
    });
  }
}

/** `namespace/name` or `name`; an unnamed object (an IstioOperator may be one) shows as `(unnamed)`. */
export function displayName(obj: Pick<MeshObject, 'metadata'>): string {
  const { name, namespace } = obj.metadata ?? { name: '' };
  const shown = typeof name === 'string' && name !== '' ? name : '(unnamed)';
  return typeof namespace === 'string' && namespace !== '' ? `${namespace}/${shown}` : shown;
}

export type SpecValidator = (spec: Record<string, unknown>, report: ObjectReport) => void;
