import type { Socket } from 'node:net';
import type { HeaderMap } from './hop-by-hop.js';

/**
 * The downstream request as the proxy uses it: node:http's IncomingMessage (fallback path) and the
 * lean fast path's LeanRequest both fit.
 */
export interface ProxyRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: HeaderMap;
  readonly httpVersion: string;
  readonly socket: Socket;
  readonly complete: boolean;
  /** Trailer fields of a chunked body, filled in by its end. */
  readonly trailers?: HeaderMap;
  on(event: 'data', fn: (chunk: Buffer) => void): this;
  on(event: 'end', fn: () => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  once(event: 'end', fn: () => void): this;
  once(event: 'error', fn: (err: Error) => void): this;
  off(event: 'data', fn: (chunk: Buffer) => void): this;
  off(event: 'end', fn: () => void): this;
  pause(): this;
  resume(): this;
  destroy(err?: Error): this;
  [Symbol.asyncIterator](): AsyncIterator<unknown>;
}

/** The downstream response as the proxy uses it (ServerResponse or LeanResponse). */
export interface ProxyResponse {
  statusCode: number;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableFinished: boolean;
  shouldKeepAlive: boolean;
  writeHead(status: number, headers?: Record<string, string | number | string[]>): this;
  write(chunk: Buffer): boolean;
  end(body?: string | Buffer): this;
  /** Trailer fields after a chunked body (dropped when the response is not chunked). */
  addTrailers(headers: Record<string, string | string[]>): void;
  destroy(): this;
  once(event: 'close' | 'finish' | 'drain', fn: () => void): this;
}
