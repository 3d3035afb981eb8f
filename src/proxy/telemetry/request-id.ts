import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Returns the request's x-request-id, generating a UUID v4 and setting it in `headers` when absent
 * or empty, so the same id travels upstream and into the access log. A repeated header keeps its
 * first value (and is collapsed to it).
 */
export function ensureRequestId(headers: IncomingHttpHeaders): string {
  const current = headers['x-request-id'];
  const value = Array.isArray(current) ? current[0] : current;
  if (value !== undefined && value !== '') {
    if (Array.isArray(current)) headers['x-request-id'] = value;
    return value;
  }
  const id = randomUUID();
  headers['x-request-id'] = id;
  return id;
}
