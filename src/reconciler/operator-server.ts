import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { handleGitWebhook, type WebhookHandlerOptions } from './webhook.js';

/** Slowloris and oversized-header guards for the operator's HTTP port. */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000;
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;
export const HTTP_MAX_HEADER_BYTES = 16 * 1024;

export interface OperatorHttpHandlers {
  status(): unknown;
  ready(): { ready: boolean; reason?: string };
  registry: Registry;
  webhook: Omit<WebhookHandlerOptions, 'onRejected'> & { onRejected?: WebhookHandlerOptions['onRejected'] };
  /** More routes (the control plane's /v1/rollout and discovery's /debug/*): true when it answered. */
  extra?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/** `/v1/status`, `/metrics`, `/healthz`, `/readyz`, `/hooks/git`. */
export async function startOperatorServer(handlers: OperatorHttpHandlers, opts: { host?: string; port?: number }): Promise<{ server: Server; port: number; url: string; close(): Promise<void> }> {
  const server = createServer({ maxHeaderSize: HTTP_MAX_HEADER_BYTES }, (req, res) => {
    route(req, res, handlers).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });
  server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS;
  server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function route(req: IncomingMessage, res: ServerResponse, h: OperatorHttpHandlers): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://operator.invalid').pathname;
  if (path === '/hooks/git') return handleGitWebhook(req, res, h.webhook);
  const core = ['/healthz', '/readyz', '/v1/status', '/metrics'];
  if (!core.includes(path)) {
    if (h.extra && (await h.extra(req, res))) return;
    req.resume();
    return json(res, 404, { error: `no route for ${path}` });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    req.resume();
    return json(res, 405, { error: 'method not allowed' });
  }
  switch (path) {
    case '/healthz':
      return json(res, 200, { status: 'ok' });
    case '/readyz': {
      const r = h.ready();
      return json(res, r.ready ? 200 : 503, r);
    }
    case '/v1/status':
      return json(res, 200, h.status());
    case '/metrics': {
      const body = await h.registry.metrics();
      res.writeHead(200, { 'content-type': h.registry.contentType }).end(body);
      return;
    }
    default:
      return json(res, 404, { error: `no route for ${path}` });
  }
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body, null, 2) + '\n');
}
