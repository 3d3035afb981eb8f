/**
 * Istio durations as its CRDs accept them (Go `time.ParseDuration` syntax, which is what the CRD's
 * `duration(self)` rule checks): one or more `<decimal><unit>` terms, units ns, us/µs, ms, s, m, h,
 * e.g. "1.5s", "100ms", "1h30m", "0s". A bare "0" is accepted, as Go does. Negative durations are
 * refused: no Istio field accepts one.
 */
export class DurationError extends Error {
  override readonly name = 'DurationError';
  constructor(readonly input: string, reason: string) {
    super(`invalid duration ${JSON.stringify(input)}: ${reason}`);
  }
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** Parses a duration to milliseconds (may be fractional for ns/us). Throws DurationError. */
export function parseDuration(input: string): number {
  if (typeof input !== 'string') throw new DurationError(String(input), 'not a string');
  if (input === '0') return 0;
  if (input === '') throw new DurationError(input, 'empty');
  if (input.startsWith('-')) throw new DurationError(input, 'must not be negative');
  const text = input.startsWith('+') ? input.slice(1) : input;
  let total = 0;
  let offset = 0;
  while (offset < text.length) {
    TERM.lastIndex = offset;
    const match = TERM.exec(text);
    if (!match || match.index !== offset) {
      throw new DurationError(input, 'expected terms like "1.5s", "100ms" or "1h30m" (units ns, us, ms, s, m, h)');
    }
    const number = match[1];
    if (number === '' || number === '.') throw new DurationError(input, `missing number before unit "${match[2]}"`);
    total += Number(number) * UNIT_MS[match[2]];
    offset = TERM.lastIndex;
  }
  if (offset === 0) throw new DurationError(input, 'missing unit');
  if (!Number.isFinite(total)) throw new DurationError(input, 'out of range');
  return total;
}

export function isValidDuration(input: unknown): boolean {
  if (typeof input !== 'string') return false;
  try {
    parseDuration(input);
    return true;
  } catch {
    return false;
  }
}
