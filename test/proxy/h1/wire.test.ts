import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Proxy } from '../../../src/proxy/index.js';
import { cluster, endpoint, route, snapshot, toCluster, DEFAULT_POOL } from '../fixtures.js';
import { send, startSidecar, startUpstream, waitFor, type Upstream } from '../helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
const rawServers: NetServer[] = [];
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
  for (const s of rawServers.splice(0)) s.close();
});

async function upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const u = await startUpstream(...args);
  ups.push(u);
  return u;
}

function oneRoute(port: number) {
  return snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(port)] } });
}

/** Writes `bytes` on a fresh connection and collects the answer until `until` holds or the peer closes. */
function raw(port: number, bytes: string | string[], until?: (text: string) => boolean): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    clients.push(sock);
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      resolve({ text, closed });
    };
    sock.on('connect', () => {
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) sock.write(b);
    });
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (until?.(text)) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', (err) => (done ? undefined : reject(err)));
  });
}

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

/** A raw upstream: `onRequest` gets each connection's accumulated bytes and answers on the socket. */
async function rawUpstream(onData: (sock: Socket, text: string) => void): Promise<{ port: number; connections: number }> {
  const state = { port: 0, connections: 0 };
  const server = createNetServer((sock) => {
    state.connections++;
    let text = '';
    sock.on('data', (d) => {
      text += d.toString('latin1');
      onData(sock, text);
    });
    sock.on('error', () => undefined);
  });
  rawServers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

describe('lean HTTP/1.1 downstream', () => {
  it('answers pipelined requests in order, with Content-Length and chunked bodies, on one connection', async () => {
    const up = await upstream((req, res, body) => res.end(`${req.method} ${req.url} [${body}]`));
    proxy = await startSidecar(oneRoute(up.port));
    const bytes =
      'GET /one HTTP/1.1\r\nhost: svc\r\n\r\n' +
      'POST /two HTTP/1.1\r\nhost: svc\r\ncontent-length: 5\r\n\r\nhello' +
      'POST /three HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n' +
      'GET /four HTTP/1.1\r\nhost: svc\r\n\r\n';
    const r = await raw(proxy.ports.outbound!, bytes, (t) => t.includes('GET /four []'));
    const bodies = [...r.text.matchAll(/(GET|POST) \/\w+ \[[^\]]*\]/g)].map((m) => m[0]);
    expect(bodies).toEqual(['GET /one []', 'POST /two [hello]', 'POST /three [abcdefg]', 'GET /four []']);
    expect(count(r.text, /HTTP\/1\.1 200 OK/g)).toBe(4);
    expect(r.closed).toBe(false);
    // The chunked request reached the upstream re-framed, never with both framings.
    expect(up.seen[2].headers['transfer-encoding']).toBe('chunked');
    expect(up.seen[2].headers['content-length']).toBeUndefined();
  });

  it('serves requests split across many small writes', async () => {
    const up = await upstream((_q, res, body) => res.end(`got ${body}`));
    proxy = await startSidecar(oneRoute(up.port));
    const msg = 'POST /x HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n';
    const r = await raw(proxy.ports.outbound!, msg.split(''), (t) => t.includes('got ab'));
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it.each([
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['a bad chunk size', 'POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', 400],
    ['differing Content-Length values', 'POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab', 400],
    ['an obs-folded header', 'GET / HTTP/1.1\r\nhost: svc\r\nx-a: 1\r\n  continued\r\n\r\n', 400],
    ['a bare LF', 'GET / HTTP/1.1\r\nhost: svc\nx-a: 1\r\n\r\n', 400],
    ['an oversized head', `GET / HTTP/1.1\r\nhost: svc\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ])('refuses %s with the expected status, closes the connection, and never forwards it', async (_what, bytes, status) => {
    const up = await upstream();
    proxy = await startSidecar(oneRoute(up.port));
    const r = await raw(proxy.ports.outbound!, bytes);
    expect(r.text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(r.text.toLowerCase()).toContain('connection: close');
    expect(r.closed).toBe(true);
    expect(up.hits).toBe(0);
  });

  it('does not let a smuggled request after a refused one through', async () => {
    const up = await upstream();
    proxy = await startSidecar(oneRoute(up.port));
    const smuggle = 'POST / HTTP/1.1\r\nhost: svc\r\ncontent-length: 44\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nhost: svc\r\n\r\n';
    const r = await raw(proxy.ports.outbound!, smuggle);
    expect(count(r.text, /HTTP\/1\.1 /g)).toBe(1);
    expect(up.seen.map((s) => s.url)).toEqual([]);
  });

  it('answers 408 and closes a connection whose head does not complete in time (slowloris)', async () => {
    const up = await upstream();
    proxy = await startSidecar(oneRoute(up.port), { headTimeoutMs: 200 });
    const r = await raw(proxy.ports.outbound!, 'GET / HTTP/1.1\r\nhost: svc\r\nx-slow: 1');
    expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closed).toBe(true);
    expect(up.hits).toBe(0);
  });

  it('hands a connection to node:http for Expect: 100-continue after fast-path requests on it', async () => {
    const up = await upstream((req, res, body) => res.end(`${req.url} [${body}]`));
    proxy = await startSidecar(oneRoute(up.port));
    const sock = connect({ host: '127.0.0.1', port: proxy.ports.outbound! });
    clients.push(sock);
    let text = '';
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.write('GET /first HTTP/1.1\r\nhost: svc\r\n\r\n');
    await waitFor(() => text.includes('/first []'), 5000, 'first response');
    sock.write('POST /second HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\nexpect: 100-continue\r\n\r\n');
    await waitFor(() => text.includes('100 Continue'), 5000, '100 Continue');
    sock.write('abc');
    await waitFor(() => text.includes('/second [abc]'), 5000, 'second response');
    sock.write('GET /third HTTP/1.1\r\nhost: svc\r\n\r\n');
    await waitFor(() => text.includes('/third []'), 5000, 'third response');
    expect(up.hits).toBe(3);
  });

  it('answers an HTTP/1.0 client close-delimited when the upstream sends no length, and HEAD without a body', async () => {
    const up = await upstream((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '11' });
        res.end();
        return;
      }
      res.write('strea');
      res.end('med');
    });
    proxy = await startSidecar(oneRoute(up.port));
    const r10 = await raw(proxy.ports.outbound!, 'GET /s HTTP/1.0\r\nhost: svc\r\n\r\n');
    expect(r10.closed).toBe(true);
    expect(r10.text.toLowerCase()).not.toContain('transfer-encoding');
    expect(r10.text.endsWith('\r\n\r\nstreamed')).toBe(true);
    // HTTP/1.1: chunked downstream; then HEAD on the same connection: a head only, and the connection stays usable.
    const r11 = await raw(proxy.ports.outbound!, ['GET /s HTTP/1.1\r\nhost: svc\r\n\r\n', 'HEAD /h HTTP/1.1\r\nhost: svc\r\n\r\n', 'GET /s HTTP/1.1\r\nhost: svc\r\n\r\n'], (t) => count(t, /0\r\n\r\n/g) === 2);
    expect(count(r11.text, /HTTP\/1\.1 200 OK/g)).toBe(3);
    expect(r11.text.toLowerCase()).toContain('transfer-encoding: chunked');
    expect(r11.text).toContain('content-length: 11');
    expect(r11.closed).toBe(false);
  });

  it('sends a non-ASCII direct response body as UTF-8 with its byte length', async () => {
    const body = 'héllo wörld ✓';
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: { kind: 'directResponse', status: 200, body } })] }], clusters: [], endpoints: {} }));
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.body).toBe(body);
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(body));
  });

  it('answers a local reply before the request body arrived, discards the body, then serves the next request', async () => {
    const up = await upstream();
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ match: [{ uri: { exact: '/direct' } }], action: { kind: 'directResponse', status: 202, body: 'early' } }), route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(up.port)] } }));
    const sock = connect({ host: '127.0.0.1', port: proxy.ports.outbound! });
    clients.push(sock);
    let text = '';
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.write('POST /direct HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel');
    await waitFor(() => text.includes('early'), 5000, 'early reply');
    // The rest of the body, then a pipelined request: the body must not be taken for a request.
    sock.write('lo\r\n0\r\n\r\nGET /after HTTP/1.1\r\nhost: svc\r\n\r\n');
    await waitFor(() => text.includes(`hello from ${up.port}`), 5000, 'second response');
    expect(count(text, /HTTP\/1\.1 /g)).toBe(2);
    expect(up.seen.map((r) => r.url)).toEqual(['/after']);
  });
});

describe('lean HTTP/1.1 upstream pool', () => {
  it('queues requests beyond maxConnections and serves them all on that many connections', async () => {
    let open = 0;
    let maxOpen = 0;
    const held: Array<() => void> = [];
    const up = await upstream((_q, res) => held.push(() => res.end('done')));
    up.server.on('connection', (c) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      c.once('close', () => open--);
    });
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', { connectionPool: { ...DEFAULT_POOL, maxConnections: 2 } })], endpoints: { c: [endpoint(up.port)] } }));
    const all = Promise.all(Array.from({ length: 5 }, () => send(proxy!.ports.outbound!, { headers: { host: 'svc' } })));
    for (let served = 0; served < 5; served++) {
      await waitFor(() => held.length > 0, 5000, 'a request at the upstream');
      expect(held.length).toBeLessThanOrEqual(2);
      held.shift()!();
    }
    const replies = await all;
    expect(replies.map((r) => r.body)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(maxOpen).toBe(2);
  });

  it('closes upstream connections idle longer than idleTimeout', async () => {
    let open = 0;
    const up = await upstream();
    up.server.on('connection', (c) => {
      open++;
      c.once('close', () => open--);
    });
    proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', { connectionPool: { ...DEFAULT_POOL, idleTimeoutMs: 200 } })], endpoints: { c: [endpoint(up.port)] } }));
    expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
    expect(open).toBe(1);
    await waitFor(() => open === 0, 5000, 'the idle upstream connection to close');
  });

  it('reuses one keep-alive connection for sequential requests', async () => {
    let connections = 0;
    const up = await upstream();
    up.server.on('connection', () => connections++);
    proxy = await startSidecar(oneRoute(up.port));
    for (let i = 0; i < 5; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' } })).status).toBe(200);
    expect(connections).toBe(1);
  });

  it('replays a request on a fresh connection when a reused keep-alive connection turns out closed', async () => {
    // Answers one request per connection without saying so, then closes: the next request on the pooled socket finds it dead.
    const state = await rawUpstream((sock, text) => {
      if (text.includes('\r\n\r\n')) {
        sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setImmediate(() => sock.destroy());
      }
    });
    proxy = await startSidecar(oneRoute(state.port));
    for (let i = 0; i < 4; i++) {
      const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
      expect(r.status).toBe(200);
      expect(r.body).toBe('ok');
    }
    expect(state.connections).toBe(4);
  });

  it('decodes a chunked upstream response with trailers and a read-until-close one', async () => {
    const state = await rawUpstream((sock, text) => {
      if (!text.endsWith('\r\n\r\n')) return;
      if (!text.includes('/close')) sock.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\nx-t: 1\r\n\r\n');
      else sock.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
    });
    proxy = await startSidecar(oneRoute(state.port));
    expect((await send(proxy.ports.outbound!, { path: '/chunked', headers: { host: 'svc' } })).body).toBe('wikipedia');
    expect((await send(proxy.ports.outbound!, { path: '/close', headers: { host: 'svc' } })).body).toBe('until close');
  });

  it('answers 503 UC for a malformed upstream response', async () => {
    const state = await rawUpstream((sock, text) => {
      if (text.includes('\r\n\r\n')) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\nok');
    });
    proxy = await startSidecar(oneRoute(state.port));
    const r = await send(proxy.ports.outbound!, { headers: { host: 'svc' } });
    expect(r.status).toBe(503);
    expect(r.headers['x-trellis-response-flags']).toBe('UC');
  });

  it('streams a large request body upstream with back-pressure, unbuffered', async () => {
    const up = await upstream((_q, res, body) => res.end(String(body.length)));
    proxy = await startSidecar(oneRoute(up.port));
    const big = Buffer.alloc(3 * 1024 * 1024, 'x');
    const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: big });
    expect(r.body).toBe(String(big.length));
  });
});

describe('lean downstream with a TLS upstream (undici path)', () => {
  it('streams chunked and Content-Length request bodies from the fast path to a TLS upstream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-h1-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=up.local', '-addext', 'subjectAltName=DNS:up.local'], { stdio: 'ignore' });
      const server = createHttpsServer({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.end(`tls got ${Buffer.concat(chunks).length} bytes ${req.headers['transfer-encoding'] ?? 'cl'}`));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      try {
        const port = (server.address() as AddressInfo).port;
        proxy = await startSidecar(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c', { tls: { mode: 'SIMPLE', caCertificates: join(dir, 'cert.pem'), sni: 'up.local', subjectAltNames: [] } })], endpoints: { c: [endpoint(port)] } }));
        const chunked = await raw(proxy.ports.outbound!, ['POST / HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n', '4\r\nabcd\r\n', '3\r\nefg\r\n0\r\n\r\n'], (t) => t.includes('bytes'));
        expect(chunked.text).toContain('tls got 7 bytes chunked');
        const big = Buffer.alloc(200_000, 'y');
        const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: big });
        expect(r.body).toBe(`tls got ${big.length} bytes cl`);
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fastPath: false', () => {
  it('serves plaintext listeners through node:http (the escape hatch), forwarding as before', async () => {
    const up = await upstream((req, res, body) => res.end(`${req.method} ${body}`));
    proxy = await startSidecar(oneRoute(up.port), { fastPath: false });
    const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'svc' }, body: 'abc' });
    expect(r.body).toBe('POST abc');
    // node:http stamps its own replies with Date and Keep-Alive; the lean path does not.
    const local = await send(proxy.ports.outbound!, { headers: { host: 'unknown' } });
    expect(local.status).toBeGreaterThanOrEqual(500);
    expect(local.headers.date).toBeDefined();
    await proxy.close({ drainMs: 0 });
    proxy = await startSidecar(oneRoute(up.port));
    const lean = await send(proxy.ports.outbound!, { headers: { host: 'unknown' } });
    expect(lean.status).toBe(local.status);
    expect(lean.headers.date).toBeUndefined();
  });
});
