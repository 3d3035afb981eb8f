import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The demo's bookinfo-like services: small HTTP apps that call each other through their
 * sidecar's outbound listener (Host-header routing) and propagate the end-user and trace headers,
 * as Istio's bookinfo sample does.
 */
export type BookinfoService = 'productpage' | 'details' | 'reviews' | 'ratings';

export interface BookinfoAppOptions {
  service: BookinfoService;
  version: string;
  namespace: string;
  /** Where the app sends its outbound calls: its sidecar's outbound listener. */
  outbound: { host: string; port: number };
  port?: number;
}

/** Headers an app must copy from its inbound request to its outbound calls (Istio's bookinfo list). */
export const PROPAGATED_HEADERS = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'end-user',
  'user-agent',
] as const;

export function propagatedHeaders(from: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED_HEADERS) {
    const value = from[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

interface CallResult {
  status: number;
  body: unknown;
}

function callService(opts: BookinfoAppOptions, host: string, path: string, headers: Record<string, string>): Promise<CallResult> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: opts.outbound.host, port: opts.outbound.port, path, method: 'GET', headers: { ...headers, host: `${host}.${opts.namespace}:9080` }, agent: keepAlive },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* plain-text error bodies from the proxy stay text */
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', () => resolve({ status: 599, body: 'response error' }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 599, body: err.message }));
    req.end();
  });
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function handle(opts: BookinfoAppOptions, req: http.IncomingMessage): Promise<{ status: number; body: unknown }> {
  const headers = propagatedHeaders(req.headers);
  const self = { service: opts.service, version: opts.version };
  switch (opts.service) {
    case 'ratings':
      return { status: 200, body: { ...self, ratings: { 'Reviewer1': 5, 'Reviewer2': 4 } } };
    case 'details':
      return { status: 200, body: { ...self, id: 0, author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200 } };
    case 'reviews': {
      // v1 shows no stars; v2 (black) and v3 (red) call ratings, as in bookinfo.
      if (opts.version === 'v1') return { status: 200, body: { ...self, reviews: 2 } };
      const ratings = await callService(opts, 'ratings', '/ratings/0', headers);
      return { status: ratings.status === 200 ? 200 : 503, body: { ...self, reviews: 2, ratings: ratings.body, stars: opts.version === 'v2' ? 'black' : 'red' } };
    }
    case 'productpage': {
      const [details, reviews] = await Promise.all([
        callService(opts, 'details', '/details/0', headers),
        callService(opts, 'reviews', '/reviews/0', headers),
      ]);
      const ok = details.status === 200 && reviews.status === 200;
      return { status: ok ? 200 : 503, body: { ...self, details: details.body, reviews: reviews.body, user: headers['end-user'] ?? null } };
    }
  }
}

export async function startBookinfoApp(opts: BookinfoAppOptions): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    handle(opts, req).then(
      ({ status, body }) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      },
    );
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
