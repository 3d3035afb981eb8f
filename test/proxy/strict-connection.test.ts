import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import type { PeerAuthMode, ProxySnapshot } from '../../src/mesh/snapshot.js';
import type { Proxy } from '../../src/proxy/index.js';
import { createInboundFilter } from '../../src/security/index.js';
import { snapshot } from './fixtures.js';
import { startSidecar, startUpstream, type Upstream } from './helpers.js';
import { MeshPki, type MeshWorkload } from './mesh-pki.js';

/**
 * PeerAuthentication on the sidecar inbound port is decided per connection, from its first bytes
 * and the snapshot in force when it opened: STRICT resets anything that is not a TLS ClientHello
 * (HTTP or not) without an HTTP answer, PERMISSIVE detects TLS per connection, DISABLE never
 * terminates TLS. Real sockets, real mesh certificates, curl as an independent client.
 */
const run = promisify(execFile);

let pki: MeshPki;
let server: MeshWorkload;
let client: MeshWorkload;
let app: Upstream;
let proxy: Proxy;
const open: Socket[] = [];

function inboundSnapshot(mtlsMode: PeerAuthMode, portLevelMtls: Record<string, PeerAuthMode> = {}): ProxySnapshot {
  return { ...snapshot({}), inbound: { mtlsMode, portLevelMtls, authorization: [], jwtRules: [] } };
}

function apply(s: ProxySnapshot): void {
  const r = proxy.applySnapshot(s);
  if (!r.ok) throw new Error(r.error);
}

interface Outcome {
  /** What came back, as text. */
  text: string;
  /** The socket error code, if the connection ended in one. */
  error?: string;
}

/** Writes `bytes` on a new plaintext connection and collects everything until it closes. */
function plaintext(port: number, bytes: string | Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    let text = '';
    let error: string | undefined;
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    open.push(socket);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      // A complete response with connection: close ends the connection; keep-alive ones end here.
      if (/\r\n\r\n/.test(text) && /content-length: (\d+)/i.test(text)) {
        const len = Number(/content-length: (\d+)/i.exec(text)![1]);
        if (text.length >= text.indexOf('\r\n\r\n') + 4 + len) socket.end();
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    socket.on('close', () => resolve(error ? { text, error } : { text }));
  });
}

/** One HTTP/1.1 request over mutual TLS with a mesh client certificate. */
function mtlsGet(port: number, path: string, withClientCert = true): Promise<Outcome> {
  return new Promise((resolve) => {
    let text = '';
    let error: string | undefined;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: pki.rootCertPem,
      ...(withClientCert ? { key: client.cert.privateKeyPem, cert: client.cert.certChainPem } : {}),
      // Mesh certificates carry only a SPIFFE URI SAN; secure naming is tested elsewhere.
      checkServerIdentity: () => undefined,
    });
    open.push(socket);
    socket.on('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`));
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => resolve(error ? { text, error } : { text }));
  });
}

const statusOf = (o: Outcome): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(o.text)?.[1] ?? 0);

beforeAll(async () => {
  pki = await MeshPki.open();
  server = await pki.workload('ratings');
  client = await pki.workload('productpage');
  app = await startUpstream();
  proxy = await startSidecar(inboundSnapshot('STRICT'), {
    outboundPort: undefined,
    inboundPort: 0,
    appPort: app.port,
    tls: server.tls,
    // The mesh's inbound filter (authorization etc.); the listener must refuse before it runs.
    inboundFilter: createInboundFilter(),
  });
}, 20_000);

afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

afterAll(async () => {
  await proxy?.close({ drainMs: 0 });
  await app?.close();
  await pki?.close();
});

describe('STRICT inbound port', () => {
  it('resets a plaintext HTTP connection without any HTTP answer; the app never sees it', async () => {
    apply(inboundSnapshot('STRICT'));
    const hits = app.hits;
    const o = await plaintext(proxy.ports.inbound!, 'GET /plain HTTP/1.1\r\nhost: app\r\n\r\n');
    expect(o).toEqual({ text: '', error: 'ECONNRESET' });
    expect(app.hits).toBe(hits);
  });

  it('resets non-HTTP bytes too (no 400 from the HTTP parser)', async () => {
    apply(inboundSnapshot('STRICT'));
    const o = await plaintext(proxy.ports.inbound!, Buffer.from([0x00, 0x01, 0x02, 0x0d, 0x0a, 0x0d, 0x0a, 0x47, 0x45, 0x54]));
    expect(o).toEqual({ text: '', error: 'ECONNRESET' });
    const half = await plaintext(proxy.ports.inbound!, 'SSH-2.0-OpenSSH_9.2\r\n');
    expect(half).toEqual({ text: '', error: 'ECONNRESET' });
  });

  it('curl over plaintext gets a reset and no status code', async () => {
    apply(inboundSnapshot('STRICT'));
    const result = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${proxy.ports.inbound}/curl`]).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
    expect([52, 56]).toContain(result.code);
    expect(result.stdout).toBe('000');
  });

  it('serves mutual TLS with a mesh certificate; a TLS client without one fails the handshake', async () => {
    apply(inboundSnapshot('STRICT'));
    const ok = await mtlsGet(proxy.ports.inbound!, '/secure');
    expect(statusOf(ok)).toBe(200);
    expect(app.seen.at(-1)?.url).toBe('/secure');
    const hits = app.hits;
    const noCert = await mtlsGet(proxy.ports.inbound!, '/no-cert', false);
    expect(statusOf(noCert)).toBe(0);
    expect(app.hits).toBe(hits);
  });
});

describe('PERMISSIVE and DISABLE', () => {
  it('PERMISSIVE detects per connection: plaintext and mutual TLS are both served, garbage gets the parser 400', async () => {
    apply(inboundSnapshot('PERMISSIVE'));
    const port = proxy.ports.inbound!;
    expect(statusOf(await plaintext(port, 'GET /p1 HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'))).toBe(200);
    expect(statusOf(await mtlsGet(port, '/p2'))).toBe(200);
    expect(statusOf(await plaintext(port, 'not http at all\r\n\r\n'))).toBe(400);
    // Bytes that cannot start a request line are refused at once, not after the 20 s head timeout.
    expect(statusOf(await plaintext(port, Buffer.from([0x00, 0x01, 0x02])))).toBe(400);
    expect(app.seen.slice(-2).map((s) => s.url)).toEqual(['/p1', '/p2']);
  }, 10_000);

  it('DISABLE serves plaintext only: a TLS ClientHello is never terminated (the HTTP parser refuses it at once)', async () => {
    apply(inboundSnapshot('DISABLE'));
    const port = proxy.ports.inbound!;
    expect(statusOf(await plaintext(port, 'GET /d1 HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'))).toBe(200);
    const hits = app.hits;
    const tls = await mtlsGet(port, '/d2');
    expect(statusOf(tls)).toBe(0);
    expect(tls.error).toBeDefined();
    expect(app.hits).toBe(hits);
  }, 10_000);
});

describe('port-level modes and snapshot changes', () => {
  it('portLevelMtls overrides the workload mode for the inbound port only', async () => {
    const port = proxy.ports.inbound!;
    apply(inboundSnapshot('PERMISSIVE', { [String(port)]: 'STRICT' }));
    expect((await plaintext(port, 'GET /pl1 HTTP/1.1\r\nhost: app\r\n\r\n')).error).toBe('ECONNRESET');
    apply(inboundSnapshot('PERMISSIVE', { [String(port + 1)]: 'STRICT' }));
    expect(statusOf(await plaintext(port, 'GET /pl2 HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'))).toBe(200);
    apply(inboundSnapshot('STRICT', { [String(port)]: 'DISABLE' }));
    expect(statusOf(await plaintext(port, 'GET /pl3 HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'))).toBe(200);
  });

  it('a new mode applies to new connections; an open plaintext connection is never forwarded once its port is STRICT', async () => {
    const port = proxy.ports.inbound!;
    apply(inboundSnapshot('PERMISSIVE'));
    // A keep-alive plaintext connection opened under PERMISSIVE.
    const socket = netConnect({ host: '127.0.0.1', port });
    open.push(socket);
    socket.setEncoding('latin1');
    let text = '';
    let closed = false;
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => undefined);
    socket.on('close', () => (closed = true));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('GET /before HTTP/1.1\r\nhost: app\r\n\r\n');
    await waitUntil(() => /hello from \d+\r\n0\r\n\r\n$/.test(text));
    expect(statusOf({ text })).toBe(200);

    apply(inboundSnapshot('STRICT'));
    expect((await plaintext(port, 'GET /new HTTP/1.1\r\nhost: app\r\n\r\n')).error).toBe('ECONNRESET');
    const hits = app.hits;
    socket.write('GET /after HTTP/1.1\r\nhost: app\r\n\r\n');
    await waitUntil(() => closed || (text.match(/HTTP\/1\.1 /g) ?? []).length >= 2);
    expect(app.hits).toBe(hits);
    expect(app.seen.some((s) => s.url === '/after')).toBe(false);

    apply(inboundSnapshot('PERMISSIVE'));
    expect(statusOf(await plaintext(port, 'GET /again HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n'))).toBe(200);
  });
});

describe('STRICT without a server certificate', () => {
  it('resets a TLS ClientHello too (no HTTP 400 from the parser) while the TLS extension has no server context', async () => {
    const bare = await startSidecar(inboundSnapshot('STRICT'), {
      outboundPort: undefined,
      inboundPort: 0,
      appPort: app.port,
      tls: { serverContext: () => undefined, clientContext: () => undefined },
    });
    try {
      const hits = app.hits;
      const o = await mtlsGet(bare.ports.inbound!, '/no-server-cert');
      expect(o.text).toBe('');
      expect(o.error).toBe('ECONNRESET');
      expect(app.hits).toBe(hits);
    } finally {
      await bare.close({ drainMs: 0 });
    }
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
