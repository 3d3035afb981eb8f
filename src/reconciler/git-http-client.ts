import { Agent as HttpsAgent } from 'node:https';
import nodeHttp from 'isomorphic-git/http/node';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';

/** Requests and bytes over the wire, for metrics and the no-change-poll benchmark. */
export interface WireStats {
  requests: number;
  bytesIn: number;
  bytesOut: number;
}

export function emptyWireStats(): WireStats {
  return { requests: 0, bytesIn: 0, bytesOut: 0 };
}

/**
 * isomorphic-git's node HTTP client, bounded by `signal` (a real socket abort, so a hanging server
 * leaks nothing), with extra headers (auth) and byte counting into `stats`.
 */
export function boundedHttpClient(opts: { signal: AbortSignal; headers?: Record<string, string>; stats: WireStats; idleTimeoutMs: number; agent?: unknown }): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      opts.signal.throwIfAborted();
      opts.stats.requests += 1;
      let body = req.body;
      if (body) {
        const chunks: Uint8Array[] = [];
        for await (const c of body) chunks.push(c);
        opts.stats.bytesOut += chunks.reduce((n, c) => n + c.byteLength, 0);
        body = chunks as unknown as AsyncIterableIterator<Uint8Array>;
      }
      const res = await nodeHttp.request({
        ...req,
        body,
        ...(opts.agent ? { agent: opts.agent } : {}),
        headers: { ...(req.headers ?? {}), ...(opts.headers ?? {}) },
        signal: opts.signal,
        // simple-get passes this to http.request: a socket idle limit on top of the operation deadline.
        fetchOptions: { timeout: opts.idleTimeoutMs },
      } as GitHttpRequest);
      const inner = res.body;
      if (inner) {
        const stats = opts.stats;
        res.body = (async function* () {
          for await (const chunk of inner) {
            stats.bytesIn += chunk.byteLength;
            yield chunk;
          }
        })();
      }
      return res;
    },
  };
}

/** An HTTPS agent trusting only `ca` (PEM bundle), keep-alive: for git servers with a private CA. */
export function agentForCa(ca: string | Buffer | undefined): HttpsAgent | undefined {
  return ca ? new HttpsAgent({ ca, keepAlive: true }) : undefined;
}

/**
 * Runs one git network operation with a hard deadline: the HTTP client is bound to an
 * AbortController that fires at `timeoutMs`, so a hanging server leaks no socket, and the
 * operation rejects with `onTimeout()`'s error.
 */
export async function withGitDeadline<T>(
  opts: { timeoutMs: number; headers?: Record<string, string>; stats: WireStats; agent?: unknown; onTimeout: () => Error },
  fn: (http: HttpClient) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(opts.onTimeout());
    }, opts.timeoutMs);
  });
  try {
    return await Promise.race([fn(boundedHttpClient({ signal: controller.signal, headers: opts.headers, stats: opts.stats, idleTimeoutMs: opts.timeoutMs, agent: opts.agent })), deadline]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
