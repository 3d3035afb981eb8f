import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Largest webhook body read; a bigger one is answered 413 without being verified. */
export const WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;
/** A client that sends its body slower than this gets 408. */
export const WEBHOOK_READ_TIMEOUT_MS = 10_000;

export type SignatureCheck = { ok: true; scheme: 'github' | 'generic' } | { ok: false; reason: string };

/**
 * Verifies GitHub's `X-Hub-Signature-256: sha256=<hex>` or the generic
 * `X-Signature: sha256=<hex>` (also sha512, like Flux's generic-hmac receiver), HMAC over the raw
 * body, compared in constant time.
 */
export function verifyWebhookSignature(body: Buffer, headers: IncomingMessage['headers'], secret: string): SignatureCheck {
  const github = header(headers, 'x-hub-signature-256');
  const generic = header(headers, 'x-signature');
  const value = github ?? generic;
  if (!value) return { ok: false, reason: 'missing signature header (X-Hub-Signature-256 or X-Signature)' };
  const m = /^(sha256|sha512)=([0-9a-fA-F]+)$/.exec(value.trim());
  if (!m) return { ok: false, reason: 'malformed signature (expected sha256=<hex>)' };
  if (github && m[1] !== 'sha256') return { ok: false, reason: 'X-Hub-Signature-256 must be sha256' };
  const expected = createHmac(m[1]!, secret).update(body).digest();
  const given = Buffer.from(m[2]!, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature mismatch' };
  return { ok: true, scheme: github ? 'github' : 'generic' };
}

function header(headers: IncomingMessage['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function signWebhookBody(body: string | Buffer, secret: string, algo: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algo}=${createHmac(algo, secret).update(body).digest('hex')}`;
}

export interface WebhookEvent {
  /** GitHub `X-GitHub-Event` (push, ping, …), when sent. */
  event?: string;
  /** The pushed ref (`refs/heads/main`) when the payload names one. */
  ref?: string;
  delivery?: string;
}

export interface WebhookHandlerOptions {
  secret: string | undefined;
  /** Full ref the operator tracks; pushes that name another ref are acknowledged and ignored. */
  trackedRef?: string;
  /** Refs never to react to (the operator's own status branch). */
  ignoredRefs?: string[];
  onAccepted(event: WebhookEvent): void;
  onRejected?(reason: string, status: number): void;
  /**
   * Whether this replica can act on a push now. A standby (not the leader) answers a verified push
   * 503 with Retry-After, so the git host or the load balancer in front retries on another replica
   * or once leadership moved, instead of the push being acknowledged and silently dropped.
   */
  standby?(): { reason: string; retryAfterSeconds: number } | undefined;
}

/**
 * `POST /hooks/git`. Unsigned or wrongly signed requests get 401 and trigger nothing. A valid
 * push to the tracked ref is answered 202 and calls `onAccepted` (the caller debounces).
 */
export async function handleGitWebhook(req: IncomingMessage, res: ServerResponse, opts: WebhookHandlerOptions): Promise<void> {
  const reply = (status: number, body: Record<string, unknown>): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
  };
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return reply(405, { error: 'method not allowed' });
  }
  if (!opts.secret) {
    req.resume();
    opts.onRejected?.('webhook disabled', 404);
    return reply(404, { error: 'webhook disabled: start the operator with --webhook-secret-file' });
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > WEBHOOK_MAX_BODY_BYTES) {
    req.resume();
    opts.onRejected?.('body too large', 413);
    return reply(413, { error: `body exceeds ${WEBHOOK_MAX_BODY_BYTES} bytes` });
  }
  let body: Buffer;
  try {
    body = await readLimited(req, WEBHOOK_MAX_BODY_BYTES, WEBHOOK_READ_TIMEOUT_MS);
  } catch (err) {
    const status = (err as { status?: number }).status ?? 400;
    opts.onRejected?.((err as Error).message, status);
    return reply(status, { error: (err as Error).message });
  }
  const check = verifyWebhookSignature(body, req.headers, opts.secret);
  if (!check.ok) {
    opts.onRejected?.(check.reason, 401);
    return reply(401, { error: 'invalid or missing signature' });
  }
  const event: WebhookEvent = { event: header(req.headers, 'x-github-event'), delivery: header(req.headers, 'x-github-delivery') };
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { ref?: unknown };
    if (typeof parsed?.ref === 'string') event.ref = parsed.ref;
  } catch {
    // Generic senders may post any body; the signature is what counts.
  }
  if (event.event === 'ping') return reply(200, { status: 'pong' });
  if (event.ref && (opts.ignoredRefs?.includes(event.ref) || (opts.trackedRef && event.ref !== opts.trackedRef && event.ref.startsWith('refs/')))) {
    return reply(202, { status: 'ignored', reason: `push to ${event.ref} is not tracked` });
  }
  const standby = opts.standby?.();
  if (standby) {
    opts.onRejected?.(standby.reason, 503);
    res.setHeader('retry-after', String(Math.max(1, Math.ceil(standby.retryAfterSeconds))));
    return reply(503, { error: standby.reason });
  }
  opts.onAccepted(event);
  return reply(202, { status: 'accepted' });
}

function readLimited(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      req.destroy();
      reject(Object.assign(new Error('body read timed out'), { status: 408 }));
    }, timeoutMs);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        clearTimeout(timer);
        req.removeAllListeners('data');
        req.resume();
        reject(Object.assign(new Error(`body exceeds ${limit} bytes`), { status: 413 }));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
