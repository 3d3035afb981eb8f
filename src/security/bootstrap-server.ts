import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { CertificateAuthority, IssuedKeyPair } from './ca/certificate-authority.js';
import { createBootstrapHandler } from './bootstrap.js';
import type { JoinTokenStore } from './join-tokens.js';

export const BOOTSTRAP_PATH = '/v1/bootstrap';

export interface BootstrapServerOptions {
  ca: CertificateAuthority;
  tokens: JoinTokenStore;
  /** The operator's serving certificate (CertificateAuthority.issueServerCertificate). */
  serverCertificate: IssuedKeyPair;
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
  logger?: Logger;
}

export interface BootstrapServer {
  /** `https://host:port/v1/bootstrap`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * `POST /v1/bootstrap` over TLS. A client certificate is requested, not required: a joining proxy
 * has none yet and its join token authenticates it; a renewing proxy presents its current mesh
 * certificate instead of the token (verified here against the mesh root; the handler refuses a
 * renewal whose certificate did not verify). The chain sent includes the root, so a proxy holding
 * only the root's pin (from its join token) can find and check it before trusting the connection.
 */
export async function startBootstrapServer(options: BootstrapServerOptions): Promise<BootstrapServer> {
  const handler = createBootstrapHandler(options.ca, options.tokens, options.logger);
  const cert = options.serverCertificate;
  const sockets = new Set<Socket>();
  const server: Server = createServer(
    {
      key: cert.privateKeyPem,
      cert: cert.certChainPem + cert.rootCertPem,
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: false,
      ca: options.ca.rootCertPem,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'https://operator.invalid').pathname;
      if (path === BOOTSTRAP_PATH) return handler(req, res);
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'NOT_FOUND', message: `no route for ${path}` }));
    },
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `https://${urlHost}:${address.port}${BOOTSTRAP_PATH}`;
  options.logger?.info({ url }, 'bootstrap endpoint listening (TLS)');
  return {
    url,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
