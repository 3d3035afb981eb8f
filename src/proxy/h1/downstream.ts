import { EventEmitter } from 'node:events';
import { STATUS_CODES, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { BodyDecoder, chunkHeader } from './body-decoder.js';
import { findHeadEnd, HeadError, isTokenByte, parseRequestHead, type HeaderValues, type RequestHead } from './head-parser.js';

/** A request body buffered (reader paused) past this many bytes pauses the socket. */
const BODY_HIGH_WATER = 64 * 1024;
/** Pipelined bytes buffered while a response is pending, past which the socket is paused. */
const PIPELINE_HIGH_WATER = 64 * 1024;
/** A first body chunk up to this size leaves in the same write as the head. */
const SMALL_BODY = 4096;

export interface LeanServerOptions {
  onRequest(req: LeanRequest, res: LeanResponse): void;
  /**
   * Connections whose next request the fast path does not serve (Upgrade, CONNECT, Expect) are
   * handed to this node:http server, bytes already read included.
   */
  fallback: HttpServer;
  /** Idle keep-alive connections close after this long (default 65 s). */
  keepAliveTimeoutMs?: number;
  /** A request head must arrive completely within this long of its first byte (default 20 s). */
  headTimeoutMs?: number;
  /** false: every connection goes to `fallback` (node:http), the escape hatch (default true). */
  fastPath?: boolean;
}

/**
 * The downstream side of the lean HTTP/1.1 fast path: a `net` server whose connections parse
 * request heads themselves (strict limits, see head-parser.ts) and serve one request at a time:
 * pipelined requests wait, already framed, until the previous response is complete, so responses
 * always leave in request order. Timers are coarse: one sweeper per server enforces the head
 * (slowloris) and keep-alive timeouts.
 */
export class LeanHttpServer {
  readonly net: NetServer;
  draining = false;
  readonly connections = new Set<DownstreamConnection>();
  readonly keepAliveTimeoutMs: number;
  readonly headTimeoutMs: number;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(readonly opts: LeanServerOptions) {
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? 65_000;
    this.headTimeoutMs = opts.headTimeoutMs ?? 20_000;
    this.net = createNetServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.handleConnection(socket));
  }

  /** Serves a connection accepted elsewhere (e.g. after protocol sniffing). */
  handleConnection(socket: Socket, first?: Buffer): void {
    if (this.opts.fastPath === false) {
      if (first) socket.unshift(first);
      this.opts.fallback.emit('connection', socket);
      return;
    }
    const c = new DownstreamConnection(this, socket);
    this.connections.add(c);
    if (!this.sweeper) {
      const every = Math.max(50, Math.min(1000, Math.floor(this.headTimeoutMs / 4)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
    if (first) c.onData(first);
  }

  private sweep(): void {
    const now = Date.now();
    for (const c of this.connections) c.checkTimeouts(now);
    if (this.connections.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Stops accepting connections (existing ones keep being served). */
  close(): void {
    this.draining = true;
    this.net.close();
  }

  /** Closes connections that are not in the middle of a request. */
  closeIdleConnections(): void {
    for (const c of [...this.connections]) if (c.idle) c.socket.destroy();
  }

  closeAllConnections(): void {
    for (const c of [...this.connections]) c.socket.destroy();
  }
}

class DownstreamConnection {
  private buf: Buffer | undefined;
  /** Backing store `buf` may be a prefix of (see append). */
  private store: Buffer | undefined;
  /** Bytes of `buf` already searched for the end of the head. */
  private scanned = 0;
  private req: LeanRequest | undefined;
  private res: LeanResponse | undefined;
  private decoder: BodyDecoder | undefined;
  private headStartedAt = 0;
  private lastActive = Date.now();
  private closed = false;
  /** The client half-closed: finish the current response, then close. */
  private peerEnded = false;
  private handedOver = false;
  private scheduled = false;
  private readonly onDataBound = (d: Buffer): void => this.onData(d);
  private readonly onCloseBound = (): void => this.onClose();
  private readonly onEndBound = (): void => this.onEnd();

  constructor(
    readonly server: LeanHttpServer,
    readonly socket: Socket,
  ) {
    socket.on('data', this.onDataBound);
    socket.on('close', this.onCloseBound);
    socket.on('end', this.onEndBound);
    socket.on('error', noop);
  }

  private onEnd(): void {
    this.peerEnded = true;
    const req = this.req;
    if (req && !req.complete) req.fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    if (!this.res && !this.scheduled && !this.buf) this.socket.end();
  }

  get idle(): boolean {
    return this.res === undefined && this.decoder === undefined;
  }

  onData(d: Buffer): void {
    this.lastActive = Date.now();
    const dec = this.decoder;
    if (dec && !dec.done) {
      // Body bytes of the current request; what follows it is the next (pipelined) request.
      let used: number;
      try {
        used = dec.feed(d, 0, d.length, (chunk) => this.req!.pushBody(chunk));
      } catch (err) {
        this.badRequest(err as HeadError);
        return;
      }
      if (dec.done) this.bodyDone();
      if (used < d.length) this.append(used === 0 ? d : d.subarray(used));
    } else this.append(d);
    if (!this.res) this.parseNext();
    else if (this.buf && this.buf.length > PIPELINE_HIGH_WATER) this.socket.pause();
  }

  /**
   * Appends to the unparsed bytes in a buffer that grows by doubling, so a head trickling in
   * byte by byte costs linear copying, not quadratic.
   */
  private append(d: Buffer): void {
    const b = this.buf;
    if (!b) {
      this.buf = d;
      return;
    }
    const len = b.length + d.length;
    const store = this.store;
    if (store && b.buffer === store.buffer && b.byteOffset === store.byteOffset && len <= store.length) {
      d.copy(store, b.length);
      this.buf = store.subarray(0, len);
      return;
    }
    const grown = Buffer.allocUnsafe(Math.max(len * 2, 1024));
    b.copy(grown, 0);
    d.copy(grown, b.length);
    this.store = grown;
    this.buf = grown.subarray(0, len);
  }

  private bodyDone(): void {
    const req = this.req!;
    const trailers = this.decoder!.trailers;
    if (trailers) req.trailers = trailers;
    this.decoder = undefined;
    req.pushEnd();
    // A response that finished before its request body was read: the connection moves on now.
    if (!this.res) this.next();
  }

  /** Parses and dispatches the next buffered request, if any and none is in progress. */
  private parseNext(): void {
    if (this.res || this.closed || this.handedOver) return;
    const buf = this.buf;
    if (!buf || buf.length === 0) return;
    if (this.headStartedAt === 0) this.headStartedAt = Date.now();
    let head: RequestHead;
    let end: number;
    try {
      end = findHeadEnd(buf, 0, this.scanned > 3 ? this.scanned - 3 : 0);
      if (end < 0) {
        // Bytes that cannot start a request line (a TLS ClientHello, a binary protocol) are refused
        // now, not after the head timeout: the client is waiting for an answer that will not come.
        if (!isTokenByte(buf[0])) throw new HeadError(400, 'invalid request line');
        this.scanned = buf.length;
        if (this.peerEnded) this.socket.end();
        return;
      }
      this.scanned = 0;
      head = parseRequestHead(buf, 0, end);
    } catch (err) {
      this.badRequest(err as HeadError);
      return;
    }
    this.headStartedAt = 0;
    if (head.special) {
      this.handOver(buf);
      return;
    }
    const rest = end < buf.length ? buf.subarray(end) : undefined;
    this.buf = undefined;
    const req = new LeanRequest(this, head);
    const res = new LeanResponse(this, req, head.keepAlive && !this.server.draining);
    this.req = req;
    this.res = res;
    const dec = new BodyDecoder(head.framing);
    if (!dec.done) {
      this.decoder = dec;
      if (rest) {
        let used: number;
        try {
          used = dec.feed(rest, 0, rest.length, (chunk) => req.pushBody(chunk));
        } catch (err) {
          this.badRequest(err as HeadError);
          return;
        }
        if (used < rest.length) this.buf = rest.subarray(used);
        if (dec.done) {
          if (dec.trailers) req.trailers = dec.trailers;
          this.decoder = undefined;
          req.complete = true;
        }
      }
    } else {
      req.complete = true;
      if (rest) this.buf = rest;
    }
    this.server.opts.onRequest(req, res);
  }

  /** The response is complete: on to the next request (or close). */
  responseDone(keepAlive: boolean): void {
    this.res = undefined;
    if (!keepAlive || this.closed || (this.peerEnded && !this.buf)) {
      this.socket.end();
      return;
    }
    this.lastActive = Date.now();
    // An unread request body is still framed: discard the rest of it, then continue.
    if (this.decoder) {
      this.req!.discard();
      return;
    }
    this.next();
  }

  private next(): void {
    this.req = undefined;
    if (this.socket.isPaused()) this.socket.resume();
    if (this.buf && !this.scheduled) {
      // Pipelined requests start on the next tick, outside the previous exchange's call stack.
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        this.parseNext();
      });
    }
  }

  private badRequest(err: HeadError): void {
    const status = err instanceof HeadError ? err.status : 400;
    const res = this.res;
    const req = this.req;
    this.buf = undefined;
    this.decoder = undefined;
    if (req && !req.complete) req.fail(err);
    if (res && res.headersSent) {
      this.socket.destroy();
      return;
    }
    if (res) res.abandon();
    const text = STATUS_CODES[status] ?? 'Bad Request';
    this.socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    this.closed = true;
  }

  private handOver(buf: Buffer): void {
    this.handedOver = true;
    this.buf = undefined;
    this.server.connections.delete(this);
    const s = this.socket;
    s.off('data', this.onDataBound);
    s.off('close', this.onCloseBound);
    s.off('end', this.onEndBound);
    s.off('error', noop);
    s.pause();
    s.unshift(buf);
    this.server.opts.fallback.emit('connection', s);
    s.resume();
  }

  private onClose(): void {
    if (this.closed && !this.res && !this.req) {
      this.server.connections.delete(this);
      return;
    }
    this.closed = true;
    this.server.connections.delete(this);
    const req = this.req;
    if (req && !req.complete) req.fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    this.res?.abandon();
  }

  checkTimeouts(now: number): void {
    if (this.closed || this.handedOver) return;
    if (this.headStartedAt !== 0 && now - this.headStartedAt > this.server.headTimeoutMs) {
      this.closed = true;
      this.socket.end('HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      setTimeout(() => this.socket.destroy(), 1000).unref();
      return;
    }
    if (this.idle && this.headStartedAt === 0 && now - this.lastActive > this.server.keepAliveTimeoutMs) this.socket.destroy();
  }

}

function noop(): void {}

const NO_TRAILERS: HeaderValues = Object.freeze({}) as HeaderValues;

function flushRequest(req: LeanRequest): void {
  req.flush();
}

/**
 * A request on the fast path: the subset of IncomingMessage the proxy uses (method, url, headers,
 * httpVersion, socket, complete) and a minimal readable body (data/end events, pause/resume,
 * async iteration) fed by the connection's body decoder.
 */
export class LeanRequest extends EventEmitter {
  readonly method: string;
  readonly url: string;
  readonly headers: HeaderValues;
  readonly httpVersion: string;
  readonly socket: Socket;
  complete = false;
  /** Trailer fields of a chunked body, set before 'end' (as IncomingMessage.trailers). */
  trailers: HeaderValues = NO_TRAILERS;
  private flowing: boolean | null = null;
  private chunks: Buffer[] | undefined;
  private buffered = 0;
  private ended = false;
  private discarding = false;
  private failed = false;
  private flushScheduled = false;

  constructor(
    private readonly conn: DownstreamConnection,
    head: RequestHead,
  ) {
    super();
    this.method = head.method;
    this.url = head.target;
    this.headers = head.headers;
    this.httpVersion = head.minor === 1 ? '1.1' : '1.0';
    this.socket = conn.socket;
  }

  override on(event: string | symbol, fn: (...args: never[]) => void): this {
    super.on(event, fn as (...args: unknown[]) => void);
    if (event === 'data' && this.flowing === null) this.resume();
    return this;
  }

  /** @internal */
  pushBody(chunk: Buffer): void {
    if (this.discarding) return;
    if (this.flowing && !this.chunks) {
      this.emit('data', chunk);
      return;
    }
    (this.chunks ??= []).push(chunk);
    this.buffered += chunk.length;
    if (this.buffered > BODY_HIGH_WATER) this.socket.pause();
  }

  /** @internal */
  pushEnd(): void {
    this.complete = true;
    if (this.flowing && !this.chunks && !this.flushScheduled) this.emitEnd();
  }

  /** @internal the response is done while the body is still arriving: drop the rest. */
  discard(): void {
    this.discarding = true;
    this.chunks = undefined;
    this.socket.resume();
  }

  /** @internal */
  fail(err: Error): void {
    if (this.failed || this.complete) return;
    this.failed = true;
    this.emit('aborted');
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private emitEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
  }

  pause(): this {
    this.flowing = false;
    return this;
  }

  resume(): this {
    if (this.flowing === true) return this;
    this.flowing = true;
    // As with node streams, buffered data and 'end' flow on a later tick: listeners attached
    // right after resume() (or after on('data')) still see them.
    if (!this.flushScheduled && (this.chunks || this.complete)) {
      this.flushScheduled = true;
      process.nextTick(flushRequest, this);
    }
    return this;
  }

  /** @internal */
  flush(): void {
    this.flushScheduled = false;
    const chunks = this.chunks;
    if (chunks) {
      this.chunks = undefined;
      this.buffered = 0;
      for (let i = 0; i < chunks.length; i++) {
        if (!this.flowing) {
          // paused again by a listener: keep the rest
          this.chunks = chunks.slice(i);
          for (const r of this.chunks) this.buffered += r.length;
          return;
        }
        this.emit('data', chunks[i]);
      }
      if (this.socket.isPaused() && !this.failed) this.socket.resume();
    }
    if (this.flowing && this.complete) this.emitEnd();
  }

  get readableEnded(): boolean {
    return this.ended;
  }

  /** Destroys the connection (as IncomingMessage.destroy does). */
  destroy(err?: Error): this {
    this.socket.destroy(err);
    return this;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    const queue: Buffer[] = [];
    let done = this.ended;
    let error: Error | undefined;
    let wake: (() => void) | undefined;
    const onData = (c: Buffer): void => {
      queue.push(c);
      wake?.();
    };
    const onEnd = (): void => {
      done = true;
      wake?.();
    };
    const onError = (e: Error): void => {
      error = e;
      wake?.();
    };
    this.on('data', onData);
    this.once('end', onEnd);
    this.once('error', onError);
    this.once('aborted', () => onError(new Error('aborted')));
    this.resume();
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (error) throw error;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('data', onData);
      this.off('end', onEnd);
      this.off('error', onError);
    }
  }
}

const NO_BODY_STATUS = (s: number): boolean => s < 200 || s === 204 || s === 304;

/**
 * The response side of the fast path: the subset of ServerResponse the proxy uses. The head is
 * held until the first body bytes (or the end), so a small response leaves in one write.
 * Without a Content-Length it is sent chunked (HTTP/1.1) or delimited by close (HTTP/1.0).
 */
export class LeanResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  writableEnded = false;
  private head: string | undefined;
  private chunked = false;
  private noBody = false;
  private corked = false;
  private closeHooks: Array<() => void> | undefined;
  private trailers: string | undefined;

  constructor(
    private readonly conn: DownstreamConnection,
    private readonly req: LeanRequest,
    public shouldKeepAlive: boolean,
  ) {
    super();
  }

  writeHead(status: number, headers?: Record<string, string | number | string[] | undefined>): this {
    if (this.headersSent || this.destroyed) return this;
    this.statusCode = status;
    this.headersSent = true;
    const http10 = this.req.httpVersion === '1.0';
    let out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    if (headers) {
      for (const name in headers) {
        const v = headers[name];
        if (v === undefined) continue;
        if (name === 'content-length') hasLength = true;
        if (Array.isArray(v)) {
          for (const one of v) if (safe(one)) out += `${name}: ${one}\r\n`;
        } else {
          const s = typeof v === 'string' ? v : String(v);
          if (safe(s)) out += `${name}: ${s}\r\n`;
        }
      }
    }
    this.noBody = this.req.method === 'HEAD' || NO_BODY_STATUS(status);
    if (!this.noBody && !hasLength) {
      if (http10) this.shouldKeepAlive = false;
      else {
        this.chunked = true;
        out += 'transfer-encoding: chunked\r\n';
      }
    }
    if (!this.shouldKeepAlive) out += 'connection: close\r\n';
    else if (http10) out += 'connection: keep-alive\r\n';
    this.head = `${out}\r\n`;
    return this;
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    const s = this.conn.socket;
    s.cork();
    process.nextTick(uncork, s);
  }

  write(chunk: Buffer | string): boolean {
    if (this.destroyed || this.writableEnded) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const s = this.conn.socket;
    const head = this.head;
    if (head !== undefined && !this.chunked && !this.noBody && typeof chunk !== 'string' && chunk.length <= SMALL_BODY) {
      // Head and a small first chunk in one string write: one syscall, no writev.
      this.head = undefined;
      return s.write(head + chunk.toString('latin1'), 'latin1');
    }
    this.cork();
    if (head !== undefined) {
      s.write(head, 'latin1');
      this.head = undefined;
    }
    if (this.noBody) return true;
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (len === 0) return true;
    if (this.chunked) {
      s.write(chunkHeader(len), 'latin1');
      s.write(chunk);
      return s.write('\r\n', 'latin1');
    }
    return s.write(chunk);
  }

  end(body?: Buffer | string): this {
    if (this.destroyed || this.writableEnded) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const s = this.conn.socket;
    if (this.head !== undefined && !this.chunked && (body === undefined || (typeof body === 'string' && isAscii(body)))) {
      // The common local reply: head and body in one write.
      s.write(this.noBody || body === undefined ? this.head : this.head + body, 'latin1');
      this.head = undefined;
    } else {
      if (body !== undefined) this.write(body);
      else if (this.head !== undefined) {
        this.cork();
        s.write(this.head, 'latin1');
        this.head = undefined;
      }
      if (this.chunked) s.write(this.trailers ? `0\r\n${this.trailers}\r\n` : '0\r\n\r\n', 'latin1');
    }
    this.writableEnded = true;
    this.writableFinished = true;
    this.conn.responseDone(this.shouldKeepAlive);
    this.emit('finish');
    this.emitClose();
    return this;
  }

  /** Trailer fields sent after a chunked body (ignored otherwise, as ServerResponse does). */
  addTrailers(headers: Record<string, string | string[] | undefined>): void {
    let out = this.trailers ?? '';
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) if (safe(one)) out += `${name}: ${one}\r\n`;
    }
    this.trailers = out;
  }

  override once(event: string | symbol, fn: (...args: never[]) => void): this {
    if (event === 'drain') {
      this.conn.socket.once('drain', fn as () => void);
      return this;
    }
    if (event === 'close') {
      // Every request registers two (the proxy's in-flight count and the exchange): a plain list
      // spares EventEmitter's once-wrapper and listener-array copies on the hot path.
      if (this.closeHooks === undefined) this.closeHooks = [fn as () => void];
      else this.closeHooks.push(fn as () => void);
      return this;
    }
    return super.once(event, fn as (...args: unknown[]) => void);
  }

  /** Runs the once('close') callbacks, then any on('close') listeners, once. */
  private emitClose(): void {
    const hooks = this.closeHooks;
    this.closeHooks = undefined;
    if (hooks !== undefined) for (let i = 0; i < hooks.length; i++) hooks[i]();
    this.emit('close');
  }

  destroy(): this {
    this.conn.socket.destroy();
    this.abandon();
    return this;
  }

  /** @internal the connection is gone (or errored) before the response ended. */
  abandon(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (!this.writableFinished) this.emitClose();
  }
}

/** True when latin1 and UTF-8 encode `s` alike (every character below 128). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function uncork(s: Socket): void {
  s.uncork();
}

/** Header values with CR or LF would split the head: dropped (they never come from a parsed message). */
function safe(v: string): boolean {
  return v.indexOf('\n') === -1 && v.indexOf('\r') === -1;
}
