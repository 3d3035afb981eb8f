import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Proxy } from '../../../src/proxy/index.js';
import { cluster, endpoint, route, snapshot, toCluster, DEFAULT_RETRY, NO_RETRY } from '../fixtures.js';
import { send, startSidecar } from '../helpers.js';
import type { RetryPolicy } from '../../../src/mesh/snapshot.js';

let proxy: Proxy | undefined;
const servers: NetServer[] = [];
afterEach(async () => {
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  for (const s of servers.splice(0)) s.close();
});

interface Seen {
  connection: number;
  method: string;
  body: string;
  answered: boolean;
}

/**
 * An upstream that closes idle keep-alive connections: it answers the first request of a
 * connection (keep-alive, Content-Length), and a connection that receives a second request is
 * destroyed unanswered — as when its idle timeout fired just as the proxy reused it (the request
 * crossed the close and never reached the app). Records every request it received whole.
 */
async function closingUpstream(): Promise<{ port: number; seen: Seen[]; connections: () => number }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = createNetServer((sock: Socket) => {
    const id = ++connections;
    let buf = '';
    let served = 0;
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.slice(end + 4, end + 4 + length);
        buf = buf.slice(end + 4 + length);
        const answered = served === 0;
        seen.push({ connection: id, method: head.slice(0, head.indexOf(' ')), body, answered });
        if (!answered) {
          sock.destroy();
          return;
        }
        served++;
        const text = `got ${body}`;
        sock.write(`HTTP/1.1 200 OK\r\ncontent-length: ${text.length}\r\n\r\n${text}`);
      }
    });
    sock.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, seen, connections: () => connections };
}

function sidecar(port: number, retry: RetryPolicy): Promise<Proxy> {
  return startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c'), retry })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(port)] } }));
}

describe('stale keep-alive connection: replay of a request with a body', () => {
  it('replays a POST with an idempotency key, its body in the retry buffer, on a fresh connection', async () => {
    const up = await closingUpstream();
    proxy = await sidecar(up.port, DEFAULT_RETRY);
    const first = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(first.status).toBe(200);
    // The pooled connection is reused for the POST, which the upstream drops: replayed on a new one.
    const post = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc', 'content-type': 'text/plain', 'idempotency-key': 'k-1' }, body: 'hello body' });
    expect(post.status).toBe(200);
    expect(post.body).toBe('got hello body');
    expect(post.headers['x-trellis-response-flags'] ?? '-').toBe('-');
    expect(up.seen.map((s) => [s.connection, s.method, s.body, s.answered])).toEqual([
      [1, 'GET', '', true],
      [1, 'POST', 'hello body', false],
      [2, 'POST', 'hello body', true],
    ]);
    expect(up.connections()).toBe(2);
  });

  it('does not replay a POST without an idempotency key (the app may have acted on it): 503 UC', async () => {
    const up = await closingUpstream();
    proxy = await sidecar(up.port, DEFAULT_RETRY);
    await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    const post = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'charge card' });
    expect(post.status).toBe(503);
    expect(post.headers['x-trellis-response-flags']).toBe('UC');
    expect(up.seen.filter((s) => s.method === 'POST').map((s) => s.body)).toEqual(['charge card']);
  });

  it('replays a chunked PUT body buffered whole, sent on with its length', async () => {
    const up = await closingUpstream();
    proxy = await sidecar(up.port, DEFAULT_RETRY);
    await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    const body = 'x'.repeat(1000);
    // No Content-Length from node's client for a body written in pieces: it goes chunked.
    const post = await send(proxy.ports.outbound!, { method: 'PUT', headers: { host: 'svc', 'transfer-encoding': 'chunked' }, body });
    expect(post.status).toBe(200);
    expect(post.body).toBe(`got ${body}`);
    expect(up.seen.filter((s) => s.answered).map((s) => s.body.length)).toEqual([0, 1000]);
  });

  it('does not replay a streamed body (no retry buffer on a route without retries): 503 UC', async () => {
    const up = await closingUpstream();
    proxy = await sidecar(up.port, NO_RETRY);
    await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    const post = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'streamed' });
    expect(post.status).toBe(503);
    expect(post.headers['x-trellis-response-flags']).toBe('UC');
    expect(up.seen.filter((s) => s.method === 'POST').map((s) => s.answered)).toEqual([false]);
  });
});
