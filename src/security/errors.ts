/**
 * Typed security errors (STYLE §18, after istio security/pkg/pki/error/error.go): each carries a
 * short `code` (bounded set, usable as a metric label) and a wire `status`. `message` is what the
 * caller may see (opaque); `reason` is what the log gets. Never put secrets in either.
 */
export type CaErrorCode =
  | 'CA_NOT_READY'
  | 'CA_LOAD'
  | 'CSR_PARSE'
  | 'CSR_SIGNATURE'
  | 'CSR_KEY'
  | 'TTL'
  | 'IDENTITY'
  | 'CERT_GEN'
  | 'AUTHN'
  | 'TLS_REQUIRED';

const WIRE_STATUS: Record<CaErrorCode, number> = {
  CA_NOT_READY: 503,
  CA_LOAD: 500,
  CSR_PARSE: 400,
  CSR_SIGNATURE: 400,
  CSR_KEY: 400,
  TTL: 400,
  IDENTITY: 400,
  CERT_GEN: 500,
  AUTHN: 401,
  TLS_REQUIRED: 403,
};

const OPAQUE_MESSAGE: Record<CaErrorCode, string> = {
  CA_NOT_READY: 'certificate authority is not ready',
  CA_LOAD: 'certificate authority failed to load',
  CSR_PARSE: 'invalid certificate signing request',
  CSR_SIGNATURE: 'invalid certificate signing request',
  CSR_KEY: 'unsupported key in certificate signing request',
  TTL: 'requested certificate lifetime is not allowed',
  IDENTITY: 'invalid workload identity',
  CERT_GEN: 'failed to generate certificate',
  AUTHN: 'authentication failed',
  TLS_REQUIRED: 'bootstrap is served over TLS only',
};

export class CaError extends Error {
  readonly code: CaErrorCode;
  /** HTTP-style status for the wire (400 bad request, 401 unauthenticated, 5xx CA side). */
  readonly status: number;
  /** Detailed cause for the operator's log; not sent to the caller. */
  readonly reason: string;

  constructor(code: CaErrorCode, reason: string, options?: { cause?: unknown }) {
    super(OPAQUE_MESSAGE[code], options);
    this.name = 'CaError';
    this.code = code;
    this.status = WIRE_STATUS[code];
    this.reason = reason;
  }

  /** The body a server sends back: opaque, no reason. */
  toWire(): { code: CaErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isCaError(error: unknown): error is CaError {
  return error instanceof CaError;
}
