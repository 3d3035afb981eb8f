/**
 * A small vocabulary for writing JSON schemas by hand. Every object is closed
 * (`additionalProperties: false`): an unknown field is an error, as Istio's CRD validation makes it.
 */
export type Schema = Record<string, unknown>;

export const str: Schema = { type: 'string' };
export const bool: Schema = { type: 'boolean' };
export const num: Schema = { type: 'number' };
export const int32: Schema = { type: 'integer', minimum: -2147483648, maximum: 2147483647 };
export const uint32: Schema = { type: 'integer', minimum: 0, maximum: 4294967295 };
export const port: Schema = { type: 'integer', minimum: 0, maximum: 4294967295 };
/** Istio duration syntax ("1.5s", "100ms"); the `duration` format is registered on the shared Ajv. */
export const duration: Schema = { type: 'string', format: 'duration' };
export const percent: Schema = { type: 'number', minimum: 0, maximum: 100 };
export const strList: Schema = { type: 'array', items: str };
export const strMap: Schema = { type: 'object', additionalProperties: str };
/** Free-form mapping (Helm values, IstioOperator components' k8s settings). */
export const openMap: Schema = { type: 'object' };

export function obj(properties: Record<string, Schema>, required: string[] = [], extra: Schema = {}): Schema {
  const schema: Schema = { type: 'object', properties, additionalProperties: false, ...extra };
  if (required.length > 0) schema.required = required;
  return schema;
}

export function list(items: Schema, extra: Schema = {}): Schema {
  return { type: 'array', items, ...extra };
}

export function mapOf(values: Schema, extra: Schema = {}): Schema {
  return { type: 'object', additionalProperties: values, ...extra };
}

export function oneOfValues(...values: string[]): Schema {
  return { type: 'string', enum: values };
}
