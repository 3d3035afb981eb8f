import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

/** Credentials for a smart-HTTP(S) git remote. Never logged: see `Redactor`. */
export type GitAuth = { type: 'basic'; username: string; password: string } | { type: 'bearer'; token: string };

/** Environment variables read by `loadGitAuth`. */
export const GIT_AUTH_ENV = {
  username: 'TRELLIS_GIT_USERNAME',
  password: 'TRELLIS_GIT_PASSWORD',
  token: 'TRELLIS_GIT_TOKEN',
  file: 'TRELLIS_GIT_CREDENTIALS_FILE',
} as const;

/**
 * Reads credentials from a file (YAML/JSON `{username, password}` or `{token}` [+ `username`]) or
 * from the environment. A token with a username is sent as basic auth (GitHub, GitLab style);
 * a token alone as `Authorization: Bearer`. Returns undefined when nothing is configured.
 */
export async function loadGitAuth(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): Promise<GitAuth | undefined> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env[GIT_AUTH_ENV.file];
  let fields: { username?: string; password?: string; token?: string };
  if (file) {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read git credentials file ${file}: ${err.code ?? 'error'}`);
    });
    const parsed: unknown = parseYaml(text);
    if (!parsed || typeof parsed !== 'object') throw new Error(`git credentials file ${file}: expected a mapping with username/password or token`);
    const p = parsed as Record<string, unknown>;
    fields = { username: str(p.username), password: str(p.password), token: str(p.token) };
  } else {
    fields = { username: env[GIT_AUTH_ENV.username], password: env[GIT_AUTH_ENV.password], token: env[GIT_AUTH_ENV.token] };
  }
  const where = file ? `git credentials file ${file}` : 'environment';
  if (fields.token) {
    return fields.username ? { type: 'basic', username: fields.username, password: fields.token } : { type: 'bearer', token: fields.token };
  }
  if (fields.username || fields.password) {
    if (!fields.username || !fields.password) throw new Error(`${where}: basic auth needs both username and password`);
    return { type: 'basic', username: fields.username, password: fields.password };
  }
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined;
}

export function authorizationHeader(auth: GitAuth | undefined): Record<string, string> {
  if (!auth) return {};
  if (auth.type === 'bearer') return { authorization: `Bearer ${auth.token}` };
  return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
}

/** Splits `https://user:pass@host/x.git` into a clean URL and basic auth. */
export function splitUrlCredentials(url: string): { url: string; auth?: GitAuth } {
  if (!/^https?:\/\//i.test(url)) return { url };
  const u = new URL(url);
  if (!u.username && !u.password) return { url };
  const auth: GitAuth = { type: 'basic', username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  u.username = '';
  u.password = '';
  return { url: u.toString(), auth };
}

/**
 * Strips credentials from any text before it reaches a log, a status or a commit (STYLE.md §15):
 * the secrets themselves, their basic-auth base64 form, URL userinfo and Authorization values.
 */
export class Redactor {
  private readonly secrets: string[];
  constructor(auth?: GitAuth, extra: string[] = []) {
    const s = [...extra];
    if (auth?.type === 'basic') {
      s.push(auth.password, Buffer.from(`${auth.username}:${auth.password}`).toString('base64'));
    } else if (auth?.type === 'bearer') s.push(auth.token);
    this.secrets = s.filter((x) => x.length >= 3).sort((a, b) => b.length - a.length);
  }
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    out = out.replace(/(https?:\/\/)[^/@\s:]+(:[^/@\s]*)?@/gi, '$1***@');
    out = out.replace(/(authorization["']?\s*[:=]\s*["']?)(basic|bearer)\s+[^\s"',}]+/gi, '$1$2 ***');
    return out;
  }
  /** A new Error whose message (and nothing else: no headers, no data) is redacted. */
  error(err: unknown): Error {
    const message = err instanceof Error ? err.message : String(err);
    const clean = new Error(this.redact(message));
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string') (clean as Error & { code?: string }).code = code;
    const statusCode = (err as { data?: { statusCode?: unknown } } | null)?.data?.statusCode;
    if (typeof statusCode === 'number') (clean as Error & { statusCode?: number }).statusCode = statusCode;
    return clean;
  }
}
