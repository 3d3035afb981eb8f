/**
 * Errors carry their handling (STYLE.md §12):
 * - StalledError: nothing will change until a new commit arrives; keep the last good config.
 * - WaitingError: a gate or dependency; try again after `requeueAfterMs`.
 * - TransientError: infrastructure trouble (network, timeout, 5xx, auth); retry with backoff.
 * `reason` is a PascalCase condition reason (see conditions.ts).
 */
export class StalledError extends Error {
  override readonly name = 'StalledError';
  constructor(
    readonly reason: string,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

export class WaitingError extends Error {
  override readonly name = 'WaitingError';
  constructor(
    readonly reason: string,
    message: string,
    readonly requeueAfterMs: number,
  ) {
    super(message);
  }
}

export class TransientError extends Error {
  override readonly name = 'TransientError';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export type ReconcileError = StalledError | WaitingError | TransientError;

export function isReconcileError(err: unknown): err is ReconcileError {
  return err instanceof StalledError || err instanceof WaitingError || err instanceof TransientError;
}

/** Message of any thrown value, for logs and status (always pass it through a redactor first). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code && !err.message.includes(String(code)) ? `${err.message} (${String(code)})` : err.message;
  }
  return String(err);
}
