import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createGunzip } from 'node:zlib';
import { timingSafeEqual } from 'node:crypto';

/**
 * A real git smart-HTTP server: `git http-backend` (shipped with git) behind a small node:http CGI
 * bridge. It serves every bare repository under `root` at `http://127.0.0.1:PORT/<name>.git`,
 * with push enabled. The demo serves the sample config repository with it; tests add faults.
 */

/** Largest request body accepted (a push pack); anything bigger is answered 413. */
export const MAX_REQUEST_BODY_BYTES = 256 * 1024 * 1024;

/**
 * Injected faults (STYLE.md §25):
 * - `down`: the listener is closed (connection refused) until the fault is cleared;
 * - `500`: every request is answered 500;
 * - `hang`: requests are accepted and never answered (until the server stops);
 * - `wrong-credentials`: every request is answered 401, as if the credentials had been revoked.
 */
export type GitServerFault = 'down' | '500' | 'hang' | 'wrong-credentials';

export interface GitServerAuth {
  username: string;
  password: string;
}

export interface GitHttpServerOptions {
  /** Directory holding bare repositories (`<root>/<name>.git`). */
  root: string;
  /** When set, every request must carry this HTTP basic auth (or `Bearer <password>`). */
  auth?: GitServerAuth;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Called after each request completes (for counting and tests). */
  onRequest?: (info: GitRequestInfo) => void;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface GitRequestInfo {
  method: string;
  path: string;
  service?: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
}

export interface GitServerStats {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  /** Requests per `service` (`git-upload-pack`, `git-receive-pack`) or `other`, advertisement GETs included. */
  byService: Record<string, number>;
  /** POSTs (pack negotiation or upload): zero for a poll that only lists refs. */
  posts: number;
  /** Requests held open right now by the `hang` fault. */
  hanging: number;
}

export interface GitHttpServer {
  /** `http(s)://127.0.0.1:PORT` (no trailing slash). */
  readonly baseUrl: string;
  readonly port: number;
  /** URL of one repository: `${baseUrl}/${name}` (name includes `.git`). */
  url(repoName: string): string;
  setFault(fault: GitServerFault | null): Promise<void>;
  readonly fault: GitServerFault | null;
  stats(): GitServerStats;
  resetStats(): void;
  close(): Promise<void>;
}

export async function startGitHttpServer(options: GitHttpServerOptions): Promise<GitHttpServer> {
  const host = options.host ?? '127.0.0.1';
  let fault: GitServerFault | null = null;
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  let stats: GitServerStats = emptyStats();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://git.invalid');
    const service = url.searchParams.get('service') ?? (url.pathname.match(/\/(git-[a-z-]+)$/)?.[1] ?? undefined);
    let bytesOut = 0;
    let bytesIn = 0;
    const origWrite = res.write.bind(res);
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (chunk && typeof chunk !== 'function') bytesOut += Buffer.byteLength(chunk as Buffer);
      return (origWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof res.write;
    const origEnd = res.end.bind(res);
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (chunk && typeof chunk !== 'function') bytesOut += Buffer.byteLength(chunk as Buffer);
      return (origEnd as (...a: unknown[]) => ServerResponse)(chunk, ...rest);
    }) as typeof res.end;
    req.on('data', (c: Buffer) => (bytesIn += c.length));
    res.on('finish', () => {
      stats.requests += 1;
      stats.bytesIn += bytesIn;
      stats.bytesOut += bytesOut;
      const key = service ?? 'other';
      stats.byService[key] = (stats.byService[key] ?? 0) + 1;
      if (req.method === 'POST') stats.posts += 1;
      options.onRequest?.({ method: req.method ?? 'GET', path: url.pathname, service, status: res.statusCode, bytesIn, bytesOut });
    });

    if (fault === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      req.resume();
      return;
    }
    if (fault === '500') {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' }).end('injected fault: internal server error\n');
      return;
    }
    if (fault === 'wrong-credentials' || (options.auth && !authorized(req, options.auth))) {
      req.resume();
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="trellis-git"' }).end('authentication required\n');
      return;
    }
    if (url.pathname.split('/').some((seg) => seg === '..')) {
      req.resume();
      res.writeHead(400).end('bad path\n');
      return;
    }
    void runBackend(req, res, url, options.root).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`git http-backend failed: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  };

  const server: Server = options.tls ? createTlsServer({ key: options.tls.key, cert: options.tls.cert }, handler) : createServer(handler);
  server.on(options.tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 5_000;

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stopListening = (): Promise<void> =>
    new Promise((resolve) => {
      for (const r of hanging) r.destroy();
      hanging.clear();
      for (const s of sockets) s.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  const port = await listen(options.port ?? 0);
  const baseUrl = `${options.tls ? 'https' : 'http'}://${host}:${port}`;

  return {
    baseUrl,
    port,
    url: (name) => `${baseUrl}/${name.replace(/^\/+/, '')}`,
    get fault() {
      return fault;
    },
    async setFault(next) {
      const wasDown = fault === 'down';
      const wasHang = fault === 'hang';
      fault = next;
      if (next === 'down' && !wasDown) await stopListening();
      if (wasDown && next !== 'down') await listen(port);
      if (wasHang && next !== 'hang') {
        for (const r of hanging) r.destroy();
        hanging.clear();
      }
    },
    stats: () => ({ ...stats, byService: { ...stats.byService }, hanging: hanging.size }),
    resetStats: () => {
      stats = emptyStats();
    },
    close: stopListening,
  };
}

function emptyStats(): GitServerStats {
  return { requests: 0, bytesIn: 0, bytesOut: 0, byService: {}, posts: 0, hanging: 0 };
}

function authorized(req: IncomingMessage, auth: GitServerAuth): boolean {
  const header = req.headers.authorization ?? '';
  const [scheme, value = ''] = header.split(' ', 2);
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return safeEqual(decoded, `${auth.username}:${auth.password}`);
  }
  if (/^bearer$/i.test(scheme ?? '')) return safeEqual(value, auth.password);
  return false;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
  // The git CLI gzips large POST bodies; http-backend can inflate them too, but buffering the
  // inflated body lets us send an exact CONTENT_LENGTH and enforce the size limit ourselves.
  const stream = encoding === 'gzip' || encoding === 'x-gzip' ? req.pipe(createGunzip()) : req;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_REQUEST_BODY_BYTES) throw new Error(`request body exceeds ${MAX_REQUEST_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function runBackend(req: IncomingMessage, res: ServerResponse, url: URL, root: string): Promise<void> {
  const body = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    // http-backend enables receive-pack (push) only for an authenticated user.
    REMOTE_USER: 'trellis',
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  if (req.method === 'POST') env.CONTENT_LENGTH = String(body.length);
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'content-encoding' || name === 'content-length' || name === 'authorization') continue;
    env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = Array.isArray(value) ? value.join(', ') : value;
  }

  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(body);
  res.on('close', () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });

  let head = Buffer.alloc(0);
  let headersDone = false;
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
      if (end < 0) return;
      const sepLen = end === crlf ? 4 : 2;
      const headerText = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + sepLen);
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of headerText.split(/\r?\n/)) {
        const idx = line.indexOf(':');
        if (idx < 0) continue;
        const name = line.slice(0, idx).trim();
        const value = line.slice(idx + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      if (rest.length) res.write(rest);
    });
    child.on('close', (code) => {
      if (!headersDone) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`git http-backend exited ${code}: ${stderr}`);
      } else res.end();
      resolve();
    });
  });
}
