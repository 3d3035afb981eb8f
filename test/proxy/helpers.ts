import { createServer, request as httpRequest, Agent, type IncomingMessage, type Server, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startProxy, type Proxy, type ProxyOptions } from '../../src/proxy/index.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';

export interface Upstream {
  port: number;
  hits: number;
  /** Requests seen, in arrival order. */
  seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }>;
  server: Server;
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: string, up: Upstream) => void;

const defaultHandler: UpstreamHandler = (req, res, _body, up) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': String(up.port) });
  res.end(`hello from ${up.port}`);
};

/** A real HTTP server on a free loopback port that records every request. */
export async function startUpstream(handler: UpstreamHandler = defaultHandler, opts: { bufferBody?: boolean } = {}): Promise<Upstream> {
  const up: Upstream = {
    port: 0,
    hits: 0,
    seen: [],
    server: undefined as unknown as Server,
    close: async () => {
      up.server.closeAllConnections();
      await new Promise<void>((r) => up.server.close(() => r()));
    },
  };
  up.server = createServer((req, res) => {
    up.hits++;
    if (opts.bufferBody === false) {
      up.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: '' });
      handler(req, res, '', up);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      up.seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handler(req, res, body, up);
    });
  });
  await new Promise<void>((r) => up.server.listen(0, '127.0.0.1', () => r()));
  up.port = (up.server.address() as AddressInfo).port;
  return up;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request to 127.0.0.1:port (new connection unless an agent is given). */
export function send(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; agent?: Agent | false; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: opts.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** Polls `cond` until true (no fixed sleeps); throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a sidecar proxy on free ports with `snap` applied. */
export async function startSidecar(snap: ProxySnapshot | undefined, extra: Partial<ProxyOptions> = {}): Promise<Proxy> {
  const proxy = await startProxy({ mode: 'sidecar', outboundPort: 0, adminPort: 0, bindAddress: '127.0.0.1', ...extra });
  if (snap) {
    const r = proxy.applySnapshot(snap);
    if (!r.ok) throw new Error(r.error);
  }
  return proxy;
}

/** A free TCP port (bound then released), for listeners whose port comes from a snapshot. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Deterministic PRNG (LCG) for tests that inject randomness. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
