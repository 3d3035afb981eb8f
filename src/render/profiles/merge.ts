/**
 * The IstioOperator overlay rule (istioctl's tree merge, as the brief fixes it): mappings merge key by key,
 * lists and scalars in the overlay replace, `null` in the overlay removes the field. Inputs are not modified.
 */
export function deepMerge<T>(base: T, overlay: unknown): T {
  if (overlay === undefined) return structuredClone(base);
  if (!isPlainObject(base) || !isPlainObject(overlay)) return structuredClone(overlay) as T;
  const out: Record<string, unknown> = structuredClone(base) as Record<string, unknown>;
  for (const [key, value] of Object.entries(overlay)) {
    if (value === null) delete out[key];
    else if (value === undefined) continue;
    else out[key] = key in out ? deepMerge(out[key], value) : structuredClone(value);
  }
  return out as T;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
