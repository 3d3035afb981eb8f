import { connect, type Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { BodyDecoder, chunkHeader } from './body-decoder.js';
import { HeadError, parseResponseHead, type BodyFraming, type ResponseHead } from './head-parser.js';

/** Largest upstream response head accepted (bigger than a request's: cookies, CSP...). */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const NO_TRAILERS = {};

export interface H1PoolOptions {
  address: string;
  port: number;
  /** Most connections (null = unlimited); requests beyond wait in a FIFO queue. */
  connections: number | null;
  connectTimeoutMs: number;
  /** Idle keep-alive connections are closed after this long. */
  idleTimeoutMs: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection: number;
}

/** A request body the pool can stream: a Readable or the lean server's request. */
export interface StreamBody {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

export interface H1DispatchOptions {
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body?: Buffer | StreamBody | null;
  /** Close the connection after this request (maxRequestsPerConnection 1). */
  reset?: boolean;
  /**
   * Trailer fields to send after the body, read once the body has ended; a body with trailers
   * goes chunked (a Buffer body too).
   */
  requestTrailers?: () => Record<string, string | string[] | undefined> | undefined;
}

/** Node-style socket error (ECONNREFUSED, ECONNRESET) or one of ours with an undici-compatible code. */
function poolError(code: string, message: string): Error {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}

/** RFC 9110 §9.2.2. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function isBuffer(b: unknown): b is Buffer {
  return Buffer.isBuffer(b);
}

function writeHeaderLines(out: string, headers: H1DispatchOptions['headers']): string {
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === 'string') {
      if (v.indexOf('\n') !== -1 || v.indexOf('\r') !== -1) throw poolError('UND_ERR_INVALID_ARG', `invalid header value for ${name}`);
      out += `${name}: ${v}\r\n`;
    } else {
      for (const one of v) {
        if (one.indexOf('\n') !== -1 || one.indexOf('\r') !== -1) throw poolError('UND_ERR_INVALID_ARG', `invalid header value for ${name}`);
        out += `${name}: ${one}\r\n`;
      }
    }
  }
  return out;
}

/**
 * One request on the pool; it is also the dispatch controller handed to the handler (pause,
 * resume, abort), so a request costs one object.
 */
class PoolRequest implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  conn: Connection | undefined;
  /** The transparent retry on a fresh connection was used (a reused keep-alive socket was stale). */
  replayed = false;
  responseStarted = false;
  bodyDone = false;
  finished = false;

  constructor(
    readonly pool: H1Pool,
    readonly opts: H1DispatchOptions,
    readonly handler: Dispatcher.DispatchHandler,
  ) {}

  get isHead(): boolean {
    return this.opts.method === 'HEAD';
  }

  /**
   * Safe to send again after a stale keep-alive socket: the body is whole in memory and the
   * request may be repeated — an idempotent method, or one carrying an idempotency key (Go's
   * net/http rule). The app may have received a POST before its connection died unanswered.
   */
  get replayable(): boolean {
    const b = this.opts.body;
    if (!(b === null || b === undefined || isBuffer(b))) return false;
    return IDEMPOTENT_METHODS.has(this.opts.method) || this.opts.headers['idempotency-key'] !== undefined || this.opts.headers['x-idempotency-key'] !== undefined;
  }

  pause(): void {
    this.paused = true;
    this.conn?.socket.pause();
  }

  resume(): void {
    this.paused = false;
    this.conn?.socket.resume();
  }

  abort(reason: Error): void {
    if (this.aborted || this.finished) return;
    this.aborted = true;
    this.reason = reason;
    const c = this.conn;
    this.fail(reason);
    if (c) c.destroy();
    else this.pool.unqueue(this);
  }

  /** Reports a failure to the handler once. */
  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    try {
      this.handler.onResponseError?.(this, err);
    } catch {
      // a handler error must not break the pool
    }
  }
}

/** One keep-alive connection to the upstream, with its response parser. */
class Connection {
  readonly socket: Socket;
  req: PoolRequest | undefined;
  ready = false;
  closed = false;
  served = 0;
  lastUsed = 0;
  private pending: Buffer | undefined;
  private head: ResponseHead | undefined;
  private decoder: BodyDecoder | undefined;
  private keepAlive = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private sawBytes = false;

  constructor(readonly pool: H1Pool) {
    const o = pool.opts;
    this.socket = connect({ host: o.address, port: o.port });
    this.socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.onError(poolError('UND_ERR_CONNECT_TIMEOUT', `connect timeout after ${o.connectTimeoutMs} ms`));
    }, o.connectTimeoutMs);
    this.socket.once('connect', () => {
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
      this.ready = true;
      if (this.req) this.send(this.req);
      else pool.connectionFree(this);
    });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (err) => this.onError(err));
    this.socket.on('close', () => this.onError(poolError('UND_ERR_SOCKET', 'upstream closed the connection')));
  }

  /** Writes the request head (and a buffered body) and starts streaming a body stream. */
  send(r: PoolRequest): void {
    this.req = r;
    r.conn = this;
    if (!this.ready) return;
    this.head = undefined;
    this.decoder = undefined;
    this.sawBytes = false;
    this.served++;
    const o = r.opts;
    const max = this.pool.opts.maxRequestsPerConnection;
    const last = o.reset === true || (max > 0 && this.served >= max);
    let head: string;
    try {
      head = writeHeaderLines(`${o.method} ${o.path} HTTP/1.1\r\n`, o.headers);
    } catch (err) {
      this.refuseBeforeWrite(r, err as Error);
      return;
    }
    if (o.headers.host === undefined) head += `host: ${this.pool.hostHeader}\r\n`;
    // A sender of TE lists it in Connection (RFC 9110 §10.1.4).
    if (o.headers.te !== undefined) head += last ? 'connection: te, close\r\n' : 'connection: te\r\n';
    else if (last) head += 'connection: close\r\n';
    const body = o.body;
    if (r.paused) this.socket.pause();
    const trailers = isBuffer(body) && o.requestTrailers ? o.requestTrailers() : undefined;
    if (body === null || body === undefined) {
      r.bodyDone = true;
      this.socket.write(`${head}\r\n`, 'latin1');
    } else if (trailers && isBuffer(body)) {
      // A buffered body that came with trailers keeps them: chunked, one chunk.
      let tail: string;
      try {
        tail = writeHeaderLines('0\r\n', trailers);
      } catch (err) {
        this.refuseBeforeWrite(r, err as Error);
        return;
      }
      r.bodyDone = true;
      this.socket.cork();
      this.socket.write(`${head}transfer-encoding: chunked\r\n\r\n`, 'latin1');
      if (body.length) {
        this.socket.write(chunkHeader(body.length), 'latin1');
        this.socket.write(body);
        this.socket.write('\r\n', 'latin1');
      }
      this.socket.write(`${tail}\r\n`, 'latin1');
      this.socket.uncork();
    } else if (isBuffer(body)) {
      if (o.headers['content-length'] === undefined) head += `content-length: ${body.length}\r\n`;
      r.bodyDone = true;
      this.socket.cork();
      this.socket.write(`${head}\r\n`, 'latin1');
      if (body.length) this.socket.write(body);
      this.socket.uncork();
    } else {
      const chunked = o.headers['content-length'] === undefined;
      if (chunked) head += 'transfer-encoding: chunked\r\n';
      this.socket.write(`${head}\r\n`, 'latin1');
      this.streamBody(r, body, chunked);
    }
    this.keepAlive = !last;
  }

  private streamBody(r: PoolRequest, body: StreamBody, chunked: boolean): void {
    const socket = this.socket;
    let waiting = false;
    body.on('data', (chunk: Buffer) => {
      if (r.conn !== this || this.closed) return;
      if (chunk.length === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(chunkHeader(chunk.length), 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok && !waiting) {
        waiting = true;
        body.pause();
        socket.once('drain', () => {
          waiting = false;
          body.resume();
        });
      }
    });
    body.on('end', () => {
      if (r.conn !== this || this.closed) return;
      if (chunked) {
        const trailers = r.opts.requestTrailers?.();
        let tail = '0\r\n';
        if (trailers) {
          try {
            tail = writeHeaderLines(tail, trailers);
          } catch {
            tail = '0\r\n'; // a value that would split the section is dropped with the rest
          }
        }
        socket.write(`${tail}\r\n`, 'latin1');
      }
      r.bodyDone = true;
      if (r.finished) this.afterResponse(r);
    });
    body.on('error', (err: Error) => {
      if (r.conn !== this) return;
      this.destroy();
      r.fail(err);
    });
    body.resume();
  }

  private onData(d: Buffer): void {
    const r = this.req;
    if (!r || r.finished) {
      // Bytes on an idle connection (or after a finished exchange): the framing is lost.
      this.destroy();
      return;
    }
    this.sawBytes = true;
    let buf = d;
    if (this.pending) {
      buf = Buffer.concat([this.pending, d]);
      this.pending = undefined;
    }
    let i = 0;
    try {
      while (i < buf.length) {
        if (!this.head) {
          const at = buf.indexOf(CRLFCRLF, i);
          if (at < 0) {
            if (buf.length - i > MAX_RESPONSE_HEAD_BYTES) throw new HeadError(400, 'upstream response head too large');
            this.pending = i === 0 ? buf : buf.subarray(i);
            return;
          }
          const head = parseResponseHead(buf, i, at + 4);
          i = at + 4;
          if (head.status < 200) continue; // 100 Continue and other interim responses
          this.head = head;
          const framing: BodyFraming = r.isHead || head.status === 204 || head.status === 304 ? { kind: 'none' } : head.framing;
          if (!head.keepAlive || framing.kind === 'close') this.keepAlive = false;
          this.decoder = new BodyDecoder(framing);
          r.responseStarted = true;
          r.handler.onResponseStart?.(r, head.status, head.headers as Record<string, string | string[]>, head.reason);
          if (r.aborted || this.closed) return;
          if (this.decoder.done) {
            this.complete(r, buf.length - i);
            return;
          }
          continue;
        }
        const dec = this.decoder!;
        i = dec.feed(buf, i, buf.length, (chunk) => {
          if (!r.aborted) r.handler.onResponseData?.(r, chunk);
        });
        if (r.aborted || this.closed) return;
        if (dec.done) {
          this.complete(r, buf.length - i);
          return;
        }
      }
    } catch (err) {
      this.destroy();
      r.fail(err instanceof HeadError ? poolError('UND_ERR_INVALID_RESPONSE', `invalid upstream response: ${err.message}`) : (err as Error));
    }
  }

  private complete(r: PoolRequest, leftover: number): void {
    // Read before afterResponse: the connection may take the next request (and a new decoder) at once.
    const trailers = this.decoder?.trailers as Record<string, string | string[]> | undefined;
    if (leftover > 0) this.keepAlive = false;
    r.finished = true;
    if (!r.bodyDone) this.keepAlive = false; // the upstream answered before reading the whole body
    this.afterResponse(r);
    try {
      r.handler.onResponseEnd?.(r, trailers ?? NO_TRAILERS);
    } catch {
      // handler errors stay with the handler
    }
  }

  /** The exchange is over: the connection goes back to the pool or closes. */
  private afterResponse(r: PoolRequest): void {
    if (this.req !== r) return;
    this.req = undefined;
    r.conn = undefined;
    if (r.paused) this.socket.resume();
    if (!this.keepAlive) {
      this.destroy();
      return;
    }
    this.lastUsed = Date.now();
    this.pool.connectionFree(this);
  }

  private onEnd(): void {
    const r = this.req;
    if (r && !r.finished && this.head && this.decoder && !this.decoder.done && this.decoder.received >= 0 && this.head.framing.kind === 'close' && !r.isHead) {
      // Read-until-close body: EOF is its end.
      this.keepAlive = false;
      this.complete(r, 0);
      return;
    }
    this.onError(poolError('UND_ERR_SOCKET', 'upstream closed the connection'));
  }

  /** A request whose head or trailers cannot be written (invalid header value): nothing was sent, the connection stays usable. */
  private refuseBeforeWrite(r: PoolRequest, err: Error): void {
    this.req = undefined;
    r.conn = undefined;
    this.pool.connectionFree(this);
    r.fail(err);
  }

  private onError(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.socket.destroy();
    this.pool.connectionClosed(this);
    const r = this.req;
    this.req = undefined;
    if (!r || r.finished) return;
    r.conn = undefined;
    // A reused keep-alive socket that the upstream closed while idle (its close crossed our
    // request): replay once on a fresh one when no response byte came back and the request is
    // replayable (its body whole in memory; a POST only with an idempotency key).
    if (this.served > 1 && !this.sawBytes && !r.responseStarted && r.replayable && !r.replayed && !r.aborted) {
      r.replayed = true;
      this.pool.enqueue(r);
      return;
    }
    r.fail(err);
  }

  destroy(): void {
    this.onError(poolError('UND_ERR_ABORTED', 'connection destroyed'));
  }
}

const pools = new Set<H1Pool>();
let sweeper: NodeJS.Timeout | undefined;

function sweepIdle(): void {
  const now = Date.now();
  for (const p of pools) p.sweep(now);
  if (pools.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * A keep-alive HTTP/1.1 connection pool to one plaintext upstream host, parsing responses itself
 * (the lean fast path; TLS upstreams use undici). Its `dispatch` speaks undici's handler API
 * (onRequestStart, onResponseStart, onResponseData, onResponseEnd, onResponseError), so the
 * exchange drives either. Requests beyond the connection limit queue; idle connections are reused
 * most-recent first and closed by a coarse sweeper after the idle timeout.
 */
export class H1Pool {
  readonly hostHeader: string;
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly queue: PoolRequest[] = [];
  private closing = false;
  private closedWaiters: Array<() => void> = [];

  constructor(readonly opts: H1PoolOptions) {
    const host = opts.address.includes(':') ? `[${opts.address}]` : opts.address;
    this.hostHeader = `${host}:${opts.port}`;
  }

  dispatch(opts: H1DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const r = new PoolRequest(this, opts, handler);
    handler.onRequestStart?.(r, {});
    if (r.aborted) return true;
    if (this.closing) {
      r.fail(poolError('UND_ERR_CLOSED', 'pool closed'));
      return false;
    }
    this.enqueue(r);
    return true;
  }

  /** @internal Assigns a request to an idle or new connection, or queues it. */
  enqueue(r: PoolRequest): void {
    let c: Connection | undefined;
    while ((c = this.idle.pop()) !== undefined) {
      if (!c.closed) {
        c.send(r);
        return;
      }
    }
    const limit = this.opts.connections;
    if (limit === null || this.all.size < limit) {
      c = new Connection(this);
      this.all.add(c);
      c.send(r);
      return;
    }
    this.queue.push(r);
  }

  /** @internal */
  unqueue(r: PoolRequest): void {
    const i = this.queue.indexOf(r);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** @internal A connection finished its request (or connected with nothing to do). */
  connectionFree(c: Connection): void {
    const next = this.queue.shift();
    if (next) {
      c.send(next);
      return;
    }
    if (this.closing) {
      c.destroy();
      return;
    }
    c.lastUsed = Date.now();
    this.idle.push(c);
    if (!pools.has(this)) {
      pools.add(this);
      if (!sweeper) {
        sweeper = setInterval(sweepIdle, 1000);
        sweeper.unref();
      }
    }
  }

  /** @internal */
  connectionClosed(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.all.size === 0) {
      pools.delete(this);
      if (this.closing) for (const w of this.closedWaiters.splice(0)) w();
    }
    // A queued request may now open its own connection.
    if (!this.closing && this.queue.length && (this.opts.connections === null || this.all.size < this.opts.connections)) {
      const next = this.queue.shift()!;
      this.enqueue(next);
    }
  }

  /** @internal Closes connections idle longer than the idle timeout. */
  sweep(now: number): void {
    const limit = this.opts.idleTimeoutMs;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i];
      if (now - c.lastUsed >= limit) c.destroy();
    }
    if (this.idle.length === 0 && this.all.size === 0) pools.delete(this);
  }

  /** Connections open now (tests and the admin view). */
  get connectionCount(): number {
    return this.all.size;
  }

  /** Stops taking requests; in-flight ones finish, then every connection closes. */
  close(): Promise<void> {
    this.closing = true;
    for (const c of [...this.idle]) c.destroy();
    for (const r of this.queue.splice(0)) r.fail(poolError('UND_ERR_CLOSED', 'pool closed'));
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  /** Closes everything now; in-flight requests fail. */
  destroy(): Promise<void> {
    this.closing = true;
    for (const r of this.queue.splice(0)) r.fail(poolError('UND_ERR_DESTROYED', 'pool destroyed'));
    for (const c of [...this.all]) c.destroy();
    pools.delete(this);
    return Promise.resolve();
  }
}
