import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Proxy } from '../../src/proxy/index.js';
import { cluster, endpoint, route, snapshot, toCluster } from './fixtures.js';
import { startSidecar } from './helpers.js';
import { MeshPki, TRUST_DOMAIN } from './mesh-pki.js';

/**
 * HTTP/1.1 details toward a TLS upstream (DestinationRule SIMPLE, served by undici rather than the
 * lean pool): Expect: 100-continue (the sidecar answers 100 itself, then streams the body), and
 * response trailers reaching a raw client.
 */
let pki: MeshPki;
let upstream: HttpsServer;
let proxy: Proxy;
const sockets: Socket[] = [];
const seen: Array<{ url: string; body: string; expect: string | undefined }> = [];

beforeAll(async () => {
  pki = await MeshPki.open();
  const cert = await pki.ca.issueServerCertificate({ identity: { trustDomain: TRUST_DOMAIN, namespace: 'default', serviceAccount: 'api' }, dnsNames: ['api.example'], ttlMs: 3_600_000 });
  upstream = createHttpsServer({ key: cert.privateKeyPem, cert: cert.certChainPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ url: req.url ?? '', body, expect: req.headers.expect });
      if (req.url === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('streamed ');
        res.addTrailers({ 'x-checksum': 'sha256=tls', 'content-type': 'not/allowed' });
        res.end('body');
        return;
      }
      const text = `got ${body}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const rootFile = join(pki.dir, 'root.pem');
  writeFileSync(rootFile, pki.rootCertPem);
  proxy = await startSidecar(
    snapshot({
      hosts: [{ domains: ['api.example'], routes: [route({ action: toCluster('api') })] }],
      clusters: [cluster('api', { port: 443, tls: { mode: 'SIMPLE', caCertificates: rootFile, subjectAltNames: [] } })],
      endpoints: { api: [endpoint((upstream.address() as AddressInfo).port)] },
    }),
  );
}, 20_000);

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

afterAll(async () => {
  await proxy?.close({ drainMs: 0 });
  if (upstream) {
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  }
  await pki?.close();
});

function connect(): Promise<{ socket: Socket; read(until: (text: string) => boolean): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: proxy.ports.outbound! });
    sockets.push(socket);
    socket.setEncoding('latin1');
    let text = '';
    let wake: (() => void) | undefined;
    socket.on('data', (d: string) => {
      text += d;
      wake?.();
    });
    socket.on('error', reject);
    const read = async (until: (t: string) => boolean): Promise<string> => {
      const deadline = Date.now() + 8000;
      while (!until(text)) {
        if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(text)}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
      const out = text;
      text = '';
      return out;
    };
    socket.once('connect', () => resolve({ socket, read }));
  });
}

describe('TLS upstream (DestinationRule SIMPLE)', () => {
  it('Expect: 100-continue: the client gets 100 before sending its body, which then reaches the upstream', async () => {
    const c = await connect();
    c.socket.write('POST /upload HTTP/1.1\r\nhost: api.example\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n');
    const interim = await c.read((t) => t.includes('\r\n\r\n'));
    expect(interim).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    c.socket.write('hello');
    const final = await c.read((t) => t.endsWith('got hello'));
    expect(final).toMatch(/^HTTP\/1\.1 200 /);
    // The proxy answered the expectation itself (hop by hop): the upstream sees no Expect.
    expect(seen.at(-1)).toEqual({ url: '/upload', body: 'hello', expect: undefined });
  });

  it('response trailers from the TLS upstream reach the client, filtered', async () => {
    const c = await connect();
    c.socket.write('GET /trailers HTTP/1.1\r\nhost: api.example\r\nte: trailers\r\n\r\n');
    const raw = await c.read((t) => /\r\n0\r\n(?:[^\r\n]+\r\n)*\r\n$/.test(t));
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    const tail = raw.slice(raw.lastIndexOf('\r\n0\r\n') + 5);
    expect(tail).toBe('x-checksum: sha256=tls\r\n\r\n');
  });
});
