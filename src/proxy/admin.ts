import { createServer, type Server } from 'node:http';
import type { Proxy } from './server.js';

const SECRET_KEYS = new Set(['privateKey', 'clientCertificate', 'jwks', 'key', 'cert']);

/** The snapshot as served by /config_dump: key material and inline JWKS redacted. */
export function redactSnapshot(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null), (k, v) => (SECRET_KEYS.has(k) && typeof v === 'string' ? '[redacted]' : v));
}

/** Admin API (bound to loopback by the caller): /ready, /server_info, /config_dump, /clusters, /stats/prometheus. */
export function createAdminServer(proxy: Proxy): Server {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body, null, 2);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const status = proxy.status();
    switch (path) {
      case '/ready': {
        const ready = status.snapshotVersion !== undefined && !status.draining;
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ready ? 'LIVE\n' : status.draining ? 'DRAINING\n' : 'NO SNAPSHOT\n');
        return;
      }
      case '/server_info':
        return json(200, {
          version: status.version,
          mode: status.mode,
          state: status.draining ? 'DRAINING' : status.snapshotVersion ? 'LIVE' : 'INITIALIZING',
          snapshotHash: status.snapshotVersion ?? null,
          meshVersion: status.meshVersion ?? null,
          snapshotSource: status.snapshotSource ?? null,
          appliedAt: status.appliedAt ?? null,
          uptimeSeconds: status.uptimeSeconds,
          lastRejected: status.lastRejected ?? null,
          listenerErrors: status.listenerErrors,
          inflightRequests: status.inflight,
        });
      case '/config_dump':
        return json(200, redactSnapshot(proxy.currentSnapshot() ?? null));
      case '/clusters':
        return json(200, proxy.clusters());
      case '/stats/prometheus': {
        const text = proxy.renderPrometheus();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
        return;
      }
      default:
        json(404, { error: `unknown admin path ${path}`, paths: ['/ready', '/server_info', '/config_dump', '/clusters', '/stats/prometheus'] });
    }
  });
  (server as Server & { isAdmin?: boolean }).isAdmin = true;
  return server;
}
