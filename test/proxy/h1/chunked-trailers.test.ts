import { afterEach, describe, expect, it } from '@jest/globals';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { RetryPolicy } from '../../../src/mesh/snapshot.js';
import type { Proxy } from '../../../src/proxy/index.js';
import { cluster, DEFAULT_RETRY, endpoint, NO_RETRY, route, snapshot, toCluster } from '../fixtures.js';
import { startSidecar, startUpstream, waitFor, type Upstream } from '../helpers.js';

/**
 * Chunked trailers through the lean HTTP/1.1 path, both ways: request trailers reach a node:http
 * upstream (streamed and buffered bodies, and through the node:http fallback for Expect), response
 * trailers reach a raw client; hop-by-hop and forbidden fields (RFC 9110 §6.5.1) are dropped; a
 * trailer section never bleeds into the next pipelined request.
 */
let proxy: Proxy | undefined;
const ups: Upstream[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
});

/** An upstream that answers with what it received, request trailers included, as JSON. */
async function echoTrailersUpstream(): Promise<Upstream> {
  const up = await startUpstream(
    (req, res, body) => {
      const json = JSON.stringify({ url: req.url, body, trailers: req.trailers, te: req.headers.te ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
    },
  );
  ups.push(up);
  return up;
}

async function sidecarTo(up: Upstream, retry: RetryPolicy = NO_RETRY): Promise<Proxy> {
  proxy = await startSidecar(
    snapshot({
      hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('svc'), retry })] }],
      clusters: [cluster('svc')],
      endpoints: { svc: [endpoint(up.port)] },
    }),
  );
  return proxy;
}

/** Writes `bytes` on a raw connection and collects what comes back until `done(text)` or close. */
function exchange(port: number, bytes: string, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    sockets.push(socket);
    socket.setEncoding('latin1');
    const timer = setTimeout(() => reject(new Error(`no complete answer; got ${JSON.stringify(text)}`)), 8000);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (d: string) => {
      text += d;
      if (done(text)) finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', finish);
  });
}

/** Splits a raw response into head, decoded chunked body and trailer lines. */
function parseChunked(text: string): { head: string; body: string; trailers: string[] } {
  const headEnd = text.indexOf('\r\n\r\n');
  const head = text.slice(0, headEnd);
  let i = headEnd + 4;
  let body = '';
  for (;;) {
    const eol = text.indexOf('\r\n', i);
    const size = parseInt(text.slice(i, eol), 16);
    i = eol + 2;
    if (size === 0) break;
    body += text.slice(i, i + size);
    i += size + 2;
  }
  const end = text.indexOf('\r\n\r\n', i - 2);
  const section = text.slice(i, end + 2);
  return { head, body, trailers: section.split('\r\n').filter(Boolean) };
}

const chunkedDone = (text: string): boolean => /\r\n0\r\n(?:[^\r\n]+\r\n)*\r\n$/.test(text);

function jsonBody(text: string): { url: string; body: string; trailers: Record<string, string>; te: string | null } {
  const headEnd = text.indexOf('\r\n\r\n');
  const len = Number(/content-length: (\d+)/i.exec(text.slice(0, headEnd))![1]);
  return JSON.parse(text.slice(headEnd + 4, headEnd + 4 + len)) as never;
}

const contentLengthDone = (count: number) => (text: string): boolean => {
  let seen = 0;
  let i = 0;
  for (;;) {
    const headEnd = text.indexOf('\r\n\r\n', i);
    if (headEnd < 0) return false;
    const len = /content-length: (\d+)/i.exec(text.slice(i, headEnd));
    if (!len) return false;
    const end = headEnd + 4 + Number(len[1]);
    if (text.length < end) return false;
    seen++;
    if (seen === count) return true;
    i = end;
  }
};

const CHUNKED_POST = (path: string, trailers: string, extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n${extra}\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n${trailers}\r\n`;

describe('response trailers', () => {
  it('reach the client after the last chunk; forbidden and hop-by-hop fields are dropped; TE: trailers goes upstream', async () => {
    let sawTe: string | undefined;
    const up = await startUpstream((req, res) => {
      sawTe = req.headers.te as string | undefined;
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, grpc-status' });
      res.write('part one, ');
      res.write('part two');
      res.addTrailers({ 'x-checksum': 'sha256=abc', 'grpc-status': '0', 'content-length': '999', 'set-cookie': 'a=b', connection: 'close' });
      res.end();
    });
    ups.push(up);
    const p = await sidecarTo(up);
    const raw = await exchange(p.ports.outbound!, 'GET /t HTTP/1.1\r\nhost: svc\r\nte: trailers\r\n\r\n', chunkedDone);
    const { head, body, trailers } = parseChunked(raw);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head).toMatch(/transfer-encoding: chunked/i);
    expect(body).toBe('part one, part two');
    expect(trailers.sort()).toEqual(['grpc-status: 0', 'x-checksum: sha256=abc']);
    expect(sawTe).toBe('trailers');
  });

  it('a response with trailers leaves the upstream connection reusable: both responses keep their own trailers', async () => {
    let n = 0;
    const up = await startUpstream((_req, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(`body ${n}`);
      res.addTrailers({ 'x-seq': String(n) });
      res.end();
    });
    ups.push(up);
    let connections = 0;
    up.server.on('connection', () => connections++);
    const p = await sidecarTo(up);
    const two = 'GET /a HTTP/1.1\r\nhost: svc\r\n\r\nGET /b HTTP/1.1\r\nhost: svc\r\n\r\n';
    const raw = await exchange(p.ports.outbound!, two, (t) => (t.match(/\r\n0\r\nx-seq: \d\r\n\r\n/g) ?? []).length === 2);
    const answers = raw.split(/(?=HTTP\/1\.1 )/).map(parseChunked);
    expect(answers.map((a) => [a.body, a.trailers])).toEqual([
      ['body 1', ['x-seq: 1']],
      ['body 2', ['x-seq: 2']],
    ]);
    expect(connections).toBe(1);
  });

  it('an upstream trailer section hiding a second response is refused: the client connection is reset, never completed', async () => {
    const raw = createNetServer((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHTTP/1.1 302 Found\r\nlocation: /evil\r\n\r\n'));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    const port = (raw.address() as AddressInfo).port;
    ups.push({ port, hits: 0, seen: [], server: raw as never, close: () => new Promise<void>((r) => raw.close(() => r())) });
    const p = await sidecarTo({ port } as Upstream);
    const text = await exchange(p.ports.outbound!, 'GET /x HTTP/1.1\r\nhost: svc\r\n\r\n', () => false);
    // The head may or may not have left before the reset; the hidden response never does.
    expect(text).not.toMatch(/302|evil/);
    expect(chunkedDone(text)).toBe(false);
  });

  it('other TE codings are not forwarded; an HTTP/1.0 client gets the body without trailers', async () => {
    let sawTe: string | undefined = 'unset';
    const up = await startUpstream((req, res) => {
      sawTe = req.headers.te as string | undefined;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('old ');
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end('client');
    });
    ups.push(up);
    const p = await sidecarTo(up);
    const raw = await exchange(p.ports.outbound!, 'GET /old HTTP/1.0\r\nhost: svc\r\nte: gzip\r\n\r\n', () => false);
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw.slice(raw.indexOf('\r\n\r\n') + 4)).toBe('old client');
    expect(raw).not.toMatch(/x-checksum/);
    expect(sawTe).toBeUndefined();
  });
});

describe('request trailers', () => {
  it('reach the upstream with a streamed body (no retries), filtered', async () => {
    const up = await echoTrailersUpstream();
    const p = await sidecarTo(up, NO_RETRY);
    const raw = await exchange(p.ports.outbound!, CHUNKED_POST('/stream', 'x-req-sum: 42\r\nhost: evil\r\ncontent-length: 3\r\nx-multi: a\r\nx-multi: b\r\n'), contentLengthDone(1));
    const seen = jsonBody(raw);
    expect(seen.url).toBe('/stream');
    expect(seen.body).toBe('hello world');
    expect(seen.trailers).toEqual({ 'x-req-sum': '42', 'x-multi': 'a, b' });
  });

  it('reach the upstream when they arrive in a later packet than the body, after the upstream saw the head', async () => {
    const up = await echoTrailersUpstream();
    let started = false;
    up.server.on('request', () => (started = true));
    const p = await sidecarTo(up, NO_RETRY);
    const socket = netConnect({ host: '127.0.0.1', port: p.ports.outbound! });
    sockets.push(socket);
    socket.setEncoding('latin1');
    let text = '';
    socket.on('data', (d: string) => (text += d));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('POST /late HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n5\r\nearly\r\n');
    await waitFor(() => started, 5000, 'the upstream to receive the head');
    socket.write('0\r\nx-late: yes\r\n\r\n');
    await waitFor(() => contentLengthDone(1)(text), 5000, 'the answer');
    expect(jsonBody(text)).toMatchObject({ url: '/late', body: 'early', trailers: { 'x-late': 'yes' } });
  });

  it('reach the upstream with a buffered (replayable) body, which then stays chunked', async () => {
    const up = await echoTrailersUpstream();
    const p = await sidecarTo(up, DEFAULT_RETRY);
    const raw = await exchange(p.ports.outbound!, CHUNKED_POST('/buffered', 'x-req-sum: 43\r\n'), contentLengthDone(1));
    const seen = jsonBody(raw);
    expect(seen).toMatchObject({ url: '/buffered', body: 'hello world', trailers: { 'x-req-sum': '43' } });
    expect(up.seen[0].headers['transfer-encoding']).toBe('chunked');
    expect(up.seen[0].headers['content-length']).toBeUndefined();
  });

  it('reach the upstream through the node:http fallback (Expect: 100-continue)', async () => {
    const up = await echoTrailersUpstream();
    const p = await sidecarTo(up, NO_RETRY);
    const raw = await exchange(p.ports.outbound!, CHUNKED_POST('/expect', 'x-req-sum: 44\r\n', 'expect: 100-continue\r\n'), (t) => contentLengthDone(1)(t.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')));
    const seen = jsonBody(raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''));
    expect(seen).toMatchObject({ url: '/expect', body: 'hello world', trailers: { 'x-req-sum': '44' } });
  });
});

describe('trailers and pipelining', () => {
  it('a trailer section ends exactly at its empty line: the next pipelined request is served on its own', async () => {
    const up = await echoTrailersUpstream();
    const p = await sidecarTo(up, NO_RETRY);
    const pipelined = CHUNKED_POST('/first', 'x-one: 1\r\n') + 'GET /second HTTP/1.1\r\nhost: svc\r\n\r\n';
    const raw = await exchange(p.ports.outbound!, pipelined, contentLengthDone(2));
    const answers = raw.split(/(?=HTTP\/1\.1 )/);
    expect(answers).toHaveLength(2);
    expect(jsonBody(answers[0])).toMatchObject({ url: '/first', trailers: { 'x-one': '1' } });
    expect(jsonBody(answers[1])).toMatchObject({ url: '/second', body: '', trailers: {} });
    expect(up.seen.map((s) => s.url)).toEqual(['/first', '/second']);
  });

  it('a trailer line with a bare LF hiding a request is refused with 400; nothing after it is served', async () => {
    const up = await echoTrailersUpstream();
    const p = await sidecarTo(up, NO_RETRY);
    const smuggle = 'POST /front HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-a: 1\nGET /smuggled HTTP/1.1\r\nhost: svc\r\n\r\n';
    const raw = await exchange(p.ports.outbound!, smuggle, () => false);
    expect(raw).toMatch(/HTTP\/1\.1 400 /);
    // The streamed request may have reached the upstream before the bad trailer; the hidden one never.
    expect(up.seen.some((s) => s.url === '/smuggled')).toBe(false);
  });

  it('a trailer field without a colon is refused with 400, not read as a request line', async () => {
    const up = await echoTrailersUpstream();
    const p = await sidecarTo(up, DEFAULT_RETRY);
    const raw = await exchange(p.ports.outbound!, 'POST /front HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n', () => false);
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(up.seen).toHaveLength(0);
  });
});
