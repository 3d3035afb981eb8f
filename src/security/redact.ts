import type { LoggerOptions } from 'pino';

/**
 * pino `redact` paths every Trellis logger uses, so join tokens, keys and credentials never reach
 * a log line (DESIGN: "Tokens and keys never appear in logs"). Paths cover the field at the top
 * level, one level down (`{bootstrap: {token}}`) and in request/response header objects.
 */
const SECRET_FIELDS = [
  'token',
  'joinToken',
  'privateKey',
  'privateKeyPem',
  'keyPem',
  'password',
  'secret',
  'clientSecret',
  'authorization',
  'cookie',
  'jwt',
];

/** Bracket notation: header names with dashes are not identifiers in fast-redact paths. */
const HEADER_FIELDS = ['.authorization', '.cookie', '["set-cookie"]', '["proxy-authorization"]', '["x-trellis-join-token"]'];

/**
 * The mTLS renewal path: the TLS options that carry the current key (`{connect|tls: {key}}`) and
 * the certificate being renewed one level deeper (`{renewal: {current: {privateKeyPem}}}`).
 */
const RENEWAL_PATHS = ['connect.key', 'tls.key', 'current.privateKeyPem'];

export const REDACT_PATHS: string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
  ...RENEWAL_PATHS,
  ...RENEWAL_PATHS.map((path) => `*.${path}`),
  ...HEADER_FIELDS.map((field) => `headers${field}`),
  ...HEADER_FIELDS.map((field) => `*.headers${field}`),
];

export const REDACT_CENSOR = '[REDACTED]';

/** Spread into pino options: `pino({ ...redactOptions, level })`. */
export const redactOptions: Pick<LoggerOptions, 'redact'> = {
  redact: { paths: REDACT_PATHS, censor: REDACT_CENSOR },
};
