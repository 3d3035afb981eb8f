import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import type { Endpoint, ProxySnapshot, UpstreamTls } from '../../src/mesh/snapshot.js';
import type { Proxy } from '../../src/proxy/index.js';
import { spiffeId } from '../../src/security/index.js';
import { cluster, endpoint, route, snapshot, toCluster } from './fixtures.js';
import { startSidecar } from './helpers.js';
import { MeshPki, TRUST_DOMAIN } from './mesh-pki.js';

/**
 * WebSocket through the sidecar to TLS upstreams: a DestinationRule SIMPLE toward a wss server
 * (certificate checked against the Host name, as undici's requests are) and ISTIO_MUTUAL toward a
 * peer sidecar whose STRICT inbound terminates mutual TLS in front of a plain ws app. Frames flow
 * both ways (text, a large binary message) and a close from either side completes its handshake.
 */
let pki: MeshPki;
let client: Proxy;
let peer: Proxy;
let wssPlain: WebSocketServer;
let wssTls: WebSocketServer;
let httpsServer: HttpsServer;
/** Close codes the ws servers saw, by the path the client asked for. */
const serverClosed = new Map<string, { code: number; reason: string }>();
const sockets: WebSocket[] = [];

const CHAT_SA = 'chat';
const MTLS_CLUSTER = 'outbound|80||chat-mtls.default.svc.cluster.local';
const SIMPLE_CLUSTER = 'outbound|443||chat-tls.default.svc.cluster.local';

/** Echo server behaviour shared by both upstreams: greets, echoes, closes on request. */
function serveChat(wss: WebSocketServer, via: string): void {
  wss.on('connection', (ws, req) => {
    const path = req.url ?? '/';
    ws.send(`hello ${via}`);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.send(data, { binary: true });
      const text = data.toString();
      if (text === 'close please') return ws.close(4001, 'server says bye');
      ws.send(`echo ${text}`);
    });
    ws.on('close', (code, reason) => serverClosed.set(path, { code, reason: reason.toString() }));
  });
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; address(): AddressInfo | string | null }): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  pki = await MeshPki.open();
  const peerWorkload = await pki.workload(CHAT_SA);
  const clientWorkload = await pki.workload('frontend');

  // The app behind the peer sidecar: plain ws.
  wssPlain = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wssPlain.once('listening', () => r()));
  serveChat(wssPlain, 'peer app');
  const strict: ProxySnapshot = { ...snapshot({}), inbound: { mtlsMode: 'STRICT', portLevelMtls: {}, authorization: [], jwtRules: [] } };
  peer = await startSidecar(strict, { outboundPort: undefined, inboundPort: 0, appPort: (wssPlain.address() as AddressInfo).port, tls: peerWorkload.tls });

  // A wss server outside the mesh with a certificate for chat.example only (no IP SAN).
  const serverCert = await pki.ca.issueServerCertificate({ identity: { trustDomain: TRUST_DOMAIN, namespace: 'default', serviceAccount: 'chat-tls' }, dnsNames: ['chat.example'], ttlMs: 3_600_000 });
  httpsServer = createHttpsServer({ key: serverCert.privateKeyPem, cert: serverCert.certChainPem });
  wssTls = new WebSocketServer({ server: httpsServer });
  serveChat(wssTls, 'wss server');
  const httpsPort = await listen(httpsServer);
  const rootFile = join(pki.dir, 'root.pem');
  writeFileSync(rootFile, pki.rootCertPem);

  const istioMutual: UpstreamTls = { mode: 'ISTIO_MUTUAL', subjectAltNames: [spiffeId({ trustDomain: TRUST_DOMAIN, namespace: 'default', serviceAccount: CHAT_SA })] };
  const simple: UpstreamTls = { mode: 'SIMPLE', caCertificates: rootFile, subjectAltNames: [] };
  const peerEndpoint: Endpoint = { ...endpoint(peer.ports.inbound!), tlsMode: 'istio', serviceAccount: CHAT_SA, namespace: 'default' };
  client = await startSidecar(
    snapshot({
      hosts: [
        { domains: ['chat-mtls'], routes: [route({ action: toCluster(MTLS_CLUSTER) })] },
        { domains: ['chat.example'], routes: [route({ action: toCluster(SIMPLE_CLUSTER) })] },
        { domains: ['other.example'], routes: [route({ action: toCluster(SIMPLE_CLUSTER) })] },
      ],
      clusters: [cluster(MTLS_CLUSTER, { tls: istioMutual }), cluster(SIMPLE_CLUSTER, { port: 443, tls: simple })],
      endpoints: { [MTLS_CLUSTER]: [peerEndpoint], [SIMPLE_CLUSTER]: [endpoint(httpsPort)] },
    }),
    { tls: clientWorkload.tls },
  );
}, 20_000);

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await client?.close({ drainMs: 0 });
  await peer?.close({ drainMs: 0 });
  for (const wss of [wssPlain, wssTls]) {
    if (!wss) continue;
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
  if (httpsServer) {
    httpsServer.closeAllConnections();
    await new Promise<void>((r) => httpsServer.close(() => r()));
  }
  await pki?.close();
});

/** Opens a ws connection through the client sidecar; collects messages in order. */
async function open(host: string, path: string): Promise<{ ws: WebSocket; next(): Promise<string | Buffer>; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${client.ports.outbound}${path}`, { headers: { host } });
  sockets.push(ws);
  const queue: Array<string | Buffer> = [];
  const waiters: Array<(m: string | Buffer) => void> = [];
  ws.on('message', (data, isBinary) => {
    const m = isBinary ? Buffer.from(data as Buffer) : data.toString();
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode} ${String(res.headers['x-trellis-response-flags'] ?? '')}`)));
  });
  const next = (): Promise<string | Buffer> => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r)));
  return { ws, next, closed };
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each([
  { name: 'ISTIO_MUTUAL to a peer sidecar (STRICT inbound)', host: 'chat-mtls', via: 'peer app' },
  { name: 'SIMPLE to a wss server, verified against the Host name', host: 'chat.example', via: 'wss server' },
])('WebSocket over $name', ({ host, via }) => {
  it('relays frames both ways, a 256 KiB binary message included', async () => {
    const c = await open(host, `/${host}/frames`);
    expect(await c.next()).toBe(`hello ${via}`);
    c.ws.send('ping');
    expect(await c.next()).toBe('echo ping');
    const big = Buffer.alloc(256 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    c.ws.send(big, { binary: true });
    const back = await c.next();
    expect(Buffer.isBuffer(back)).toBe(true);
    expect((back as Buffer).equals(big)).toBe(true);
    c.ws.close(1000);
    await c.closed;
  });

  it('a close from the client completes its handshake on both ends', async () => {
    const path = `/${host}/client-close`;
    const c = await open(host, path);
    expect(await c.next()).toBe(`hello ${via}`);
    c.ws.close(1000, 'client done');
    expect(await c.closed).toEqual({ code: 1000, reason: 'client done' });
    await waitFor(() => serverClosed.has(path), 'the server to see the close');
    expect(serverClosed.get(path)).toEqual({ code: 1000, reason: 'client done' });
  });

  it('a close from the server reaches the client with its code and reason', async () => {
    const path = `/${host}/server-close`;
    const c = await open(host, path);
    expect(await c.next()).toBe(`hello ${via}`);
    c.ws.send('close please');
    expect(await c.closed).toEqual({ code: 4001, reason: 'server says bye' });
    await waitFor(() => serverClosed.has(path), 'the server to finish the close');
    // 1006 here would mean the client's closing frame never made it back through the tunnel.
    expect(serverClosed.get(path)).toEqual({ code: 4001, reason: 'server says bye' });
  });
});

describe('WebSocket upstream certificate checks', () => {
  it('SIMPLE refuses a server whose certificate does not name the Host (503 UF, no upgrade)', async () => {
    const before = serverClosed.size;
    await expect(open('other.example', '/other/refused')).rejects.toThrow('upgrade refused: 503 UF');
    expect(wssTls.clients.size).toBe(0);
    expect(serverClosed.size).toBe(before);
  });
});
