import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledDestination, CompiledRoute } from '../routing/route-table.js';
import { applyHeaderOps } from '../routing/header-ops.js';
import type { ClusterRuntime } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';
import { backoffMs, retriableFailure, retriableStatus, type CompiledRetry } from '../resilience/retry-policy.js';
import { classifyUpstreamError, failureError, PROXY_ERRORS, RESPONSE_FLAGS_HEADER, type AttemptFailure, type ProxyErrorCode } from '../errors.js';
import { forwardableTrailers, isHopByHop, type HeaderMap } from './hop-by-hop.js';
import type { ProxyRequest, ProxyResponse } from './types.js';
import type { StreamBody } from '../h1/upstream-pool.js';

/** Request bodies up to this size are buffered so that retries and mirrors can replay them. */
export const REPLAY_BUFFER_LIMIT = 64 * 1024;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Everything an exchange reports when it finishes (telemetry and access log). */
export interface ExchangeOutcome {
  status: number;
  flags: string;
  host: EndpointState | undefined;
  cluster: ClusterRuntime | undefined;
  requestBytes: number;
  responseBytes: number;
  attempts: number;
}

export interface ExchangeOptions {
  req: ProxyRequest;
  res: ProxyResponse;
  route: CompiledRoute | undefined;
  destination: CompiledDestination | undefined;
  cluster: ClusterRuntime;
  retry: CompiledRetry | undefined;
  method: string;
  path: string;
  headers: HeaderMap;
  /** Extra response headers (CORS) added after the header ops. */
  extraResponseHeaders?: Record<string, string>;
  /** Consistent-hash key, computed by the caller when the cluster hashes. */
  hash: number | undefined;
  random: () => number;
  /** Set-Cookie to add when a consistent-hash cookie was generated. */
  setCookie?: string;
  onDone: (o: ExchangeOutcome) => void;
}

/**
 * One downstream request forwarded upstream, attempt by attempt (undici dispatch handlers), with
 * retries, per-try and route timeouts, circuit breakers and outlier reporting. Response bodies stream
 * with back-pressure; nothing is written downstream until an attempt's response is accepted.
 */
export class Exchange {
  private body: Buffer | StreamBody | null = null;
  private replayable = true;
  private attemptNo = 0;
  private current: Attempt | undefined;
  private tried: EndpointState[] = [];
  private routeTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private finished = false;
  private committed = false;
  private downstreamGone = false;
  private requestBytes = 0;
  responseBytes = 0;
  private flags = '';
  private lastHost: EndpointState | undefined;
  private isRetryAttempt = false;

  constructor(private readonly o: ExchangeOptions) {}

  /** The request's trailers to forward, once its body has ended (the pool asks then). */
  private readonly requestTrailers = (): HeaderMap | undefined => forwardableTrailers(this.o.req.trailers);

  /** Starts the exchange: reads (or streams) the body, then the first attempt. */
  start(bodyMode: 'none' | 'buffer' | 'stream'): void {
    const { req, res } = this.o;
    res.once('close', () => {
      if (!res.writableFinished && !this.finished) {
        this.downstreamGone = true;
        this.current?.abort(new Error('downstream closed'));
        this.finish(0, 'DC');
      }
    });
    const timeoutMs = this.o.route?.timeoutMs;
    if (timeoutMs !== undefined && timeoutMs > 0) {
      this.routeTimer = setTimeout(() => this.onRouteTimeout(), timeoutMs);
    }
    if (bodyMode === 'none') {
      this.body = null;
      this.o.headers['content-length'] = undefined;
      if (req.headers['content-length'] === '0') this.o.headers['content-length'] = '0';
      req.resume();
      this.attempt();
    } else if (bodyMode === 'stream') {
      this.body = req;
      this.replayable = false;
      this.requestBytes = Number(req.headers['content-length']) || 0;
      this.attempt();
    } else {
      this.bufferBody();
    }
  }

  private bufferBody(): void {
    const { req } = this.o;
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      if (size > REPLAY_BUFFER_LIMIT) {
        // Too large to replay: stream the buffered prefix and the rest; no retries.
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        this.replayable = false;
        this.requestBytes = Number(req.headers['content-length']) || size;
        this.body = Readable.from(prefixThenRest(chunks, req));
        this.attempt();
      }
    };
    const onEnd = (): void => {
      const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      this.body = buf.length ? buf : null;
      this.requestBytes = buf.length;
      // A body with trailers stays chunked upstream (the pool frames it), so they are not lost.
      const framed = this.body || this.o.req.headers['content-length'] !== undefined || this.o.req.headers['transfer-encoding'] !== undefined;
      if (framed && !this.requestTrailers()) this.o.headers['content-length'] = String(buf.length);
      this.attempt();
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', () => this.finish(0, 'DC'));
  }

  /** The body buffered for replay (mirrors use it); undefined when the body streams. */
  get replayBody(): Buffer | null | undefined {
    return this.replayable ? (this.body as Buffer | null) : undefined;
  }

  private attempt(): void {
    if (this.finished || this.downstreamGone) return;
    const { cluster } = this.o;
    this.attemptNo++;
    if (cluster.active >= cluster.capacity) return this.failLocal('overflow');
    const host = cluster.pick(this.o.hash, this.o.random, this.tried);
    if (!host) return this.failLocal('no_healthy_upstream');
    this.tried.push(host);
    this.lastHost = host;
    const a = new Attempt(this, host, cluster, this.isRetryAttempt);
    this.current = a;
    if (this.isRetryAttempt) cluster.retriesActive++;
    host.acquire();
    cluster.active++;
    const perTry = this.o.retry?.perTryTimeoutMs;
    if (perTry !== undefined && perTry > 0 && this.o.retry!.attempts > 0) a.startTimer(perTry);
    try {
      host.getPool().dispatch(
        {
          path: this.o.path,
          method: this.o.method,
          headers: this.o.headers,
          body: this.body,
          headersTimeout: 0,
          bodyTimeout: 0,
          upgrade: null,
          reset: cluster.noKeepAlive,
          requestTrailers: this.requestTrailers,
          // undici would otherwise take SNI from the Host header (Istio's auto SNI): the DR's `sni` wins.
          ...(cluster.sni ? { servername: cluster.sni } : {}),
        },
        a,
      );
    } catch (err) {
      a.fail(err);
    }
  }

  /** @internal an attempt got response headers; true = accepted (stream it), false = retried. */
  onAttemptHeaders(a: Attempt, status: number, headers: Record<string, string | string[] | undefined>): boolean {
    const grpc = headers['grpc-status'];
    const retry = this.o.retry;
    if (retry && this.canRetry() && retriableStatus(retry, status, typeof grpc === 'string' ? grpc : undefined)) {
      this.o.cluster.report(a.host, status, false);
      this.scheduleRetry();
      return false;
    }
    this.o.cluster.report(a.host, status, false);
    this.commit(status, headers);
    return true;
  }

  /** @internal an attempt failed before its response headers. */
  onAttemptFailure(a: Attempt, failure: AttemptFailure): void {
    this.o.cluster.report(a.host, 0, true);
    const retry = this.o.retry;
    const idempotentReset = failure === 'reset' && IDEMPOTENT.has(this.o.method);
    if (retry && this.canRetry() && retriableFailure(retry, failure, idempotentReset)) {
      this.scheduleRetry();
      return;
    }
    this.failLocal(failureError(failure));
  }

  /** @internal an attempt failed after its response started downstream: reset downstream. */
  onAttemptResetAfterCommit(flag: string): void {
    this.flags = flag;
    this.o.res.destroy();
    this.finish(this.o.res.statusCode, flag);
  }

  /** @internal */
  writeData(a: Attempt, chunk: Buffer, controller: Dispatcher.DispatchController): void {
    this.responseBytes += chunk.length;
    if (!this.o.res.write(chunk)) {
      controller.pause();
      this.o.res.once('drain', () => controller.resume());
    }
    void a;
  }

  /** @internal */
  endResponse(trailers: Record<string, string | string[] | undefined> | undefined): void {
    const forwarded = forwardableTrailers(trailers);
    if (forwarded) this.o.res.addTrailers(forwarded as Record<string, string | string[]>);
    this.o.res.end();
    this.finish(this.o.res.statusCode, this.flags || '-');
  }

  private canRetry(): boolean {
    const retry = this.o.retry!;
    return (
      this.replayable &&
      !this.downstreamGone &&
      !this.finished &&
      this.attemptNo <= retry.attempts &&
      this.o.cluster.retriesActive < this.o.cluster.maxRetries
    );
  }

  private scheduleRetry(): void {
    const delay = backoffMs(this.o.retry!, this.attemptNo, this.o.random);
    this.isRetryAttempt = true;
    this.current = undefined;
    this.flags = 'URX';
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.attempt();
    }, delay);
  }

  private commit(status: number, upstream: Record<string, string | string[] | undefined>): void {
    const headers: Record<string, string | string[] | undefined> = {};
    for (const name in upstream) {
      if (isHopByHop(name)) continue;
      headers[name] = upstream[name];
    }
    const d = this.o.destination;
    if (d) applyHeaderOps(headers, d.responseHeaders);
    if (this.o.route) applyHeaderOps(headers, this.o.route.responseHeaders);
    const extra = this.o.extraResponseHeaders;
    if (extra) for (const k in extra) headers[k] = extra[k];
    if (this.o.setCookie) {
      const existing = headers['set-cookie'];
      headers['set-cookie'] = existing === undefined ? [this.o.setCookie] : [...(Array.isArray(existing) ? existing : [existing]), this.o.setCookie];
    }
    this.flags = '';
    this.committed = true;
    for (const k in headers) if (headers[k] === undefined) delete headers[k];
    this.o.res.writeHead(status, headers as Record<string, string | string[]>);
  }

  private onRouteTimeout(): void {
    this.routeTimer = undefined;
    if (this.finished) return;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.current?.abort(new Error('route timeout'));
    this.current = undefined;
    if (this.committed) {
      this.onAttemptResetAfterCommit('UT');
      return;
    }
    this.failLocal('upstream_timeout');
  }

  private failLocal(code: ProxyErrorCode): void {
    if (this.finished) return;
    const info = PROXY_ERRORS[code];
    const res = this.o.res;
    if (!res.headersSent && !this.downstreamGone) {
      res.writeHead(info.status, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(info.body),
        [RESPONSE_FLAGS_HEADER]: info.flag,
      });
      res.end(info.body);
      this.responseBytes += Buffer.byteLength(info.body);
    }
    // A body still being sent (streaming) must not keep the downstream connection half-used.
    if (!this.replayable && !this.o.req.complete) res.once('finish', () => this.o.req.destroy());
    this.finish(info.status, info.flag);
  }

  private finish(status: number, flags: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.routeTimer) clearTimeout(this.routeTimer);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.o.onDone({
      status,
      flags: flags || '-',
      host: this.lastHost,
      cluster: this.o.cluster,
      requestBytes: this.requestBytes,
      responseBytes: this.responseBytes,
      attempts: this.attemptNo,
    });
  }

  /** @internal */
  isCurrent(a: Attempt): boolean {
    return this.current === a && !this.finished;
  }

  /** @internal */
  get isCommitted(): boolean {
    return this.committed;
  }
}

async function* prefixThenRest(prefix: Buffer[], rest: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  for (const c of prefix) yield c;
  for await (const c of rest) yield c as Buffer;
}

/** One try against one host: an undici dispatch handler that ignores callbacks once superseded. */
class Attempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private aborted: Error | undefined;
  private streaming = false;

  constructor(
    private readonly ex: Exchange,
    readonly host: EndpointState,
    private readonly cluster: ClusterRuntime,
    private readonly isRetry: boolean,
  ) {}

  startTimer(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.ex.isCurrent(this) || this.streaming) return;
      this.abort(new Error('per-try timeout'));
      this.release();
      this.ex.onAttemptFailure(this, 'per-try-timeout');
    }, ms);
  }

  abort(err: Error): void {
    this.aborted = err;
    if (this.controller && !this.controller.aborted) this.controller.abort(err);
    this.release();
  }

  private release(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.released) return;
    this.released = true;
    this.host.release();
    this.cluster.active--;
    if (this.isRetry) this.cluster.retriesActive--;
  }

  /** A synchronous dispatch error. */
  fail(err: unknown): void {
    this.release();
    if (this.ex.isCurrent(this)) this.ex.onAttemptFailure(this, classifyUpstreamError(err));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(this.aborted);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return;
    if (!this.ex.isCurrent(this)) {
      if (!controller.aborted) controller.abort(new Error('superseded'));
      return;
    }
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.streaming = true;
    if (!this.ex.onAttemptHeaders(this, statusCode, headers)) {
      controller.abort(new Error('retrying'));
      this.release();
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.ex.isCurrent(this)) return;
    this.ex.writeData(this, chunk, controller);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.release();
    if (!this.ex.isCurrent(this)) return;
    this.ex.endResponse(trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.release();
    if (!this.ex.isCurrent(this) || this.aborted) return;
    if (this.ex.isCommitted) this.ex.onAttemptResetAfterCommit('UR');
    else this.ex.onAttemptFailure(this, classifyUpstreamError(err));
  }
}
