/**
 * Schema-level validation: one ajv validator per kind, compiled once at module load, and the
 * mapping of ajv errors to Diagnostics that name file:line:col, the object and the field path.
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { isValidDuration, parseDuration } from './duration.js';
import { childPath, pointerToPath } from './field-path.js';
import { MESH_KINDS } from './kinds.js';
import type { KindInfo } from './kinds.js';
import { fieldSource } from './load.js';
import type { Diagnostic, MeshObject } from './object.js';
import { list, obj, str, strList, strMap } from './schemas/dsl.js';
import { displayName } from './validators/context.js';
import type { Schema } from './schemas/dsl.js';

export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
  ajv.addFormat('duration', { type: 'string', validate: isValidDuration });
  return ajv;
}

const ajv = createAjv();

function metadataSchema(nameRequired: boolean): Schema {
  return obj(
    {
      name: str,
      namespace: str,
      generateName: str,
      labels: strMap,
      annotations: strMap,
      uid: str,
      resourceVersion: str,
      generation: { type: 'integer' },
      creationTimestamp: { type: ['string', 'null'] },
      deletionTimestamp: { type: ['string', 'null'] },
      finalizers: strList,
      ownerReferences: list({ type: 'object' }),
      managedFields: list({ type: 'object' }),
    },
    nameRequired ? ['name'] : [],
  );
}

function objectSchema(info: KindInfo): Schema {
  return obj(
    {
      apiVersion: str,
      kind: str,
      metadata: metadataSchema(info.nameOptional !== true),
      spec: info.spec,
      status: info.status,
    },
    ['apiVersion', 'kind', 'metadata'],
  );
}

const VALIDATORS = new Map<KindInfo, ValidateFunction>(MESH_KINDS.map((info) => [info, ajv.compile(objectSchema(info))]));

/** `namespace/name` (or `name`) as diagnostics print it. */
export function objectName(obj: Pick<MeshObject, 'metadata'>): string {
  return displayName(obj);
}

/** The value ajv validates: the object as written, without loader bookkeeping. */
function documentView(obj: MeshObject): Record<string, unknown> {
  const view: Record<string, unknown> = { ...obj.extraFields, apiVersion: obj.apiVersion, kind: obj.kind, metadata: obj.metadata, spec: obj.spec };
  if (obj.status !== undefined) view.status = obj.status;
  return view;
}

/** Runs the kind's schema over `obj`; returns errors (empty when valid). */
export function checkSchema(obj: MeshObject, info: KindInfo): Diagnostic[] {
  const validate = VALIDATORS.get(info);
  if (!validate) throw new Error(`no schema compiled for ${info.kind}`);
  if (validate(documentView(obj))) return [];
  return (validate.errors ?? []).map((err) => toDiagnostic(err, obj));
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function toDiagnostic(err: ErrorObject, obj: MeshObject): Diagnostic {
  let path = pointerToPath(err.instancePath);
  let message: string;
  switch (err.keyword) {
    case 'additionalProperties': {
      const field = String((err.params as { additionalProperty: string }).additionalProperty);
      path = childPath(path, field);
      message = `unknown field "${field}"`;
      break;
    }
    case 'required': {
      const field = String((err.params as { missingProperty: string }).missingProperty);
      path = childPath(path, field);
      message = `missing required field "${field}"`;
      break;
    }
    case 'enum': {
      const allowed = (err.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ');
      message = `must be one of ${allowed}; got ${JSON.stringify(err.data)}`;
      break;
    }
    case 'type': {
      const expected = (err.params as { type: string | string[] }).type;
      message = `must be ${Array.isArray(expected) ? expected.join(' or ') : expected}; got ${describeType(err.data)}`;
      break;
    }
    case 'format': {
      if ((err.params as { format: string }).format === 'duration') {
        try {
          parseDuration(String(err.data));
          message = 'invalid duration';
        } catch (e) {
          message = (e as Error).message;
        }
      } else message = `must match format ${(err.params as { format: string }).format}`;
      break;
    }
    default:
      message = `${err.message ?? 'is invalid'}${err.data !== undefined && typeof err.data !== 'object' ? `; got ${JSON.stringify(err.data)}` : ''}`;
  }
  const at = fieldSource(obj, path);
  return {
    severity: 'error',
    file: at.file,
    line: at.line,
    col: at.col,
    kind: obj.kind,
    name: objectName(obj),
    fieldPath: path || undefined,
    message,
  };
}
