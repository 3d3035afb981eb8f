import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { createServer as createHttp1Server } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, createServer as createH2cServer } from 'node:http2';
import type { Http2SecureServer, Http2Server, Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;
export type RequestHandler = (req: AnyRequest, res: AnyResponse) => void;

export interface ServerTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** CA bundle client certificates must chain to. */
  ca?: string | Buffer;
  /** Require and verify a client certificate (mTLS). Default: true when `ca` is given. */
  requestClientCertificate?: boolean;
}

/** Flow-control window large enough that a full snapshot is not throttled by round trips. */
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const FIRST_BYTES_TIMEOUT_MS = 10_000;

export interface DualProtocolServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
  /** Every open socket is destroyed (stop without waiting for long-lived streams). */
  destroyConnections(): void;
}

/**
 * One port for HTTP/2 and HTTP/1.1: with TLS through ALPN (`allowHTTP1`); in plaintext by reading
 * the first bytes (the HTTP/2 preface starts with `PRI `), so h2c discovery streams and curl-style
 * HTTP/1.1 requests to the debug API share the port.
 */
export function createDualProtocolServer(handler: RequestHandler, tls?: ServerTlsOptions): DualProtocolServer {
  const sockets = new Set<Socket>();
  const settings = { initialWindowSize: STREAM_WINDOW_BYTES };
  let outer: NetServer | Http2SecureServer;
  if (tls) {
    const requestCert = tls.requestClientCertificate ?? tls.ca !== undefined;
    const secure = createSecureServer(
      { key: tls.key, cert: tls.cert, ca: tls.ca, requestCert, rejectUnauthorized: requestCert, allowHTTP1: true, settings },
      handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
    );
    secure.on('connection', (socket: Socket) => track(socket));
    outer = secure;
  } else {
    const h2: Http2Server = createH2cServer({ settings }, handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
    const h1 = createHttp1Server(handler as (req: IncomingMessage, res: ServerResponse) => void);
    h1.keepAliveTimeout = 5000;
    outer = createNetServer((socket) => {
      track(socket);
      // A connection that never says a word is not kept forever.
      socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy());
      socket.once('data', (first: Buffer) => {
        socket.setTimeout(0);
        socket.pause();
        socket.unshift(first);
        if (first.subarray(0, 4).toString('latin1') === 'PRI ') h2.emit('connection', socket);
        else h1.emit('connection', socket);
        process.nextTick(() => socket.resume());
      });
    });
  }

  function track(socket: Socket): void {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  }

  return {
    listen(port: number, host: string): Promise<AddressInfo> {
      return new Promise((resolve, reject) => {
        outer.once('error', reject);
        outer.listen(port, host, () => {
          outer.off('error', reject);
          resolve(outer.address() as AddressInfo);
        });
      });
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        outer.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
    destroyConnections(): void {
      for (const socket of sockets) socket.destroy();
    },
  };
}
