import { describe, expect, it } from '@jest/globals';
import { findHeadEnd, HeadError, MAX_HEAD_BYTES, parseRequestHead, parseResponseHead, type BodyFraming } from '../../../src/proxy/h1/head-parser.js';
import { BodyDecoder } from '../../../src/proxy/h1/body-decoder.js';

function req(text: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = findHeadEnd(buf, 0);
  if (end < 0) throw new Error('incomplete head');
  return parseRequestHead(buf, 0, end);
}

function refused(text: string): number {
  try {
    req(text);
  } catch (err) {
    if (err instanceof HeadError) return err.status;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

/** Feeds `body` to a decoder in pieces of `step` bytes; returns the body and where it stopped. */
function decode(framing: BodyFraming, body: string, step: number) {
  const d = new BodyDecoder(framing);
  const out: Buffer[] = [];
  const buf = Buffer.from(body, 'latin1');
  let consumed = 0;
  for (let i = 0; i < buf.length && !d.done; i += step) {
    const piece = buf.subarray(i, Math.min(buf.length, i + step));
    consumed = i + d.feed(piece, 0, piece.length, (c) => out.push(Buffer.from(c)));
  }
  return { body: Buffer.concat(out).toString('latin1'), done: d.done, consumed };
}

describe('request heads', () => {
  it('parses the request line, lower-cases names, trims values, joins duplicates as node:http does', () => {
    const h = req('POST /a?b=1 HTTP/1.1\r\nHost: svc\r\nX-A:  one \r\nx-a: two\r\nCookie: a=1\r\ncookie: b=2\r\nSet-Cookie: s=1\r\nContent-Length: 3\r\n\r\n');
    expect(h).toMatchObject({ method: 'POST', target: '/a?b=1', minor: 1, keepAlive: true, special: false, framing: { kind: 'length', length: 3 } });
    expect(h.headers).toEqual({ host: 'svc', 'x-a': 'one, two', cookie: 'a=1; b=2', 'set-cookie': ['s=1'], 'content-length': '3' });
  });

  it('keep-alive follows the version and Connection', () => {
    expect(req('GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n').keepAlive).toBe(false);
    expect(req('GET / HTTP/1.0\r\n\r\n').keepAlive).toBe(false);
    expect(req('GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n').keepAlive).toBe(true);
  });

  it('marks Upgrade, CONNECT and Expect requests for the full node:http path', () => {
    expect(req('GET /ws HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n').special).toBe(true);
    expect(req('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\nexpect: 100-continue\r\n\r\n').special).toBe(true);
    expect(req('CONNECT a:443 HTTP/1.1\r\nhost: a:443\r\n\r\n').special).toBe(true);
    // Upgrade without Connection: upgrade is an ordinary request.
    expect(req('GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\n\r\n').special).toBe(false);
  });

  it('refuses request-smuggling vectors with 400', () => {
    expect(refused('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n')).toBe(400);
    expect(refused('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n')).toBe(400);
    expect(refused('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: +3\r\n\r\n')).toBe(400);
    expect(refused('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0x10\r\n\r\n')).toBe(400);
    expect(refused('POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, identity\r\n\r\n')).toBe(400);
    expect(refused('POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: xchunked\r\n\r\n')).toBe(400);
    expect(refused('GET / HTTP/1.1\r\nhost: a\r\nx: a\nb: c\r\n\r\n')).toBe(400); // bare LF
    expect(refused('GET / HTTP/1.1\r\nhost: a\r\nx: a\rb\r\n\r\n')).toBe(400); // bare CR
    expect(refused('GET / HTTP/1.1\r\nhost: a\r\nx: a\r\n folded\r\n\r\n')).toBe(400); // obs-fold
    expect(refused('GET / HTTP/1.1\r\nhost : a\r\n\r\n')).toBe(400); // space before colon
    expect(refused('GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n')).toBe(400);
    expect(refused('GET / HTTP/1.1\r\nx: 1\r\n\r\n')).toBe(400); // HTTP/1.1 without Host
    expect(refused('GET / HTTP/1.1\r\nhost: a\r\nx: a\u0001b\r\n\r\n')).toBe(400);
    expect(refused('GET /a b HTTP/1.1\r\nhost: a\r\n\r\n')).toBe(400);
    expect(refused('G(T / HTTP/1.1\r\nhost: a\r\n\r\n')).toBe(400);
    expect(refused('GET / HTTP/2.0\r\nhost: a\r\n\r\n')).toBe(501);
    expect(refused('GET / FOO\r\nhost: a\r\n\r\n')).toBe(400);
  });

  it('answers 431 past the head size and header count limits', () => {
    const big = `GET / HTTP/1.1\r\nhost: a\r\nx: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`;
    expect(refused(big)).toBe(431);
    // An incomplete head that is already too large fails before its end arrives.
    expect(() => findHeadEnd(Buffer.from(`GET / HTTP/1.1\r\nx: ${'a'.repeat(MAX_HEAD_BYTES)}`), 0)).toThrow(HeadError);
    let many = 'GET / HTTP/1.1\r\nhost: a\r\n';
    for (let i = 0; i < 300; i++) many += `x-${i}: 1\r\n`;
    expect(refused(`${many}\r\n`)).toBe(431);
  });
});

describe('response heads', () => {
  it('keeps duplicates as arrays and reads the framing', () => {
    const buf = Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n');
    const h = parseResponseHead(buf, 0, buf.length);
    expect(h).toMatchObject({ status: 200, reason: 'OK', framing: { kind: 'chunked' }, keepAlive: true });
    expect(h.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const close = Buffer.from('HTTP/1.0 200 OK\r\n\r\n');
    expect(parseResponseHead(close, 0, close.length)).toMatchObject({ framing: { kind: 'close' }, keepAlive: false });
    const noReason = Buffer.from('HTTP/1.1 204\r\n\r\n');
    expect(parseResponseHead(noReason, 0, noReason.length)).toMatchObject({ status: 204, reason: '' });
  });

  it('refuses a malformed status line and conflicting framing', () => {
    for (const text of ['HTTP/1.1 2000 OK\r\n\r\n', 'HTTP/2 200 OK\r\n\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n']) {
      const b = Buffer.from(text);
      expect(() => parseResponseHead(b, 0, b.length)).toThrow(HeadError);
    }
  });
});

describe('body decoder', () => {
  const chunked = '5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT';

  it.each([1, 2, 3, 7, 1000])('decodes chunked bodies fed %i byte(s) at a time and stops at the message end', (step) => {
    const r = decode({ kind: 'chunked' }, chunked, step);
    expect(r.body).toBe('hello, world');
    expect(r.done).toBe(true);
    expect(chunked.slice(r.consumed)).toBe('NEXT');
  });

  it('counts Content-Length bodies and leaves what follows', () => {
    const r = decode({ kind: 'length', length: 5 }, 'helloGET /', 3);
    expect(r).toEqual({ body: 'hello', done: true, consumed: 5 });
  });

  it.each([
    ['non-hex size', 'zz\r\nhello\r\n0\r\n\r\n'],
    ['missing size', '\r\nhello\r\n0\r\n\r\n'],
    ['size overflow', '10000000000000\r\n'],
    ['data longer than its size', '2\r\nhello\r\n0\r\n\r\n'],
    ['bare LF after size', '5\nhello\r\n0\r\n\r\n'],
    ['negative size', '-5\r\nhello\r\n0\r\n\r\n'],
    ['space in size', '5 \r\nhello\r\n0\r\n\r\n'],
  ])('refuses %s', (_what, body) => {
    expect(() => decode({ kind: 'chunked' }, body, 1000)).toThrow(HeadError);
  });
});
