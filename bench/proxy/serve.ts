/**
 * Child-process entry points for the proxy bench: each prints one JSON line `{"port": N}` once
 * listening, then serves until killed.
 *   upstream                      a small keep-alive HTTP server answering "ok"
 *   trellis <snapshot.json>       the Trellis proxy (sidecar outbound) watching that file
 *   http-proxy <upstreamPort>     node http-proxy with a keep-alive agent
 */
import { createServer, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';

const [kind, arg] = process.argv.slice(2);
process.on('SIGINT', () => process.exit(0));

function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

if (kind === 'upstream') {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
} else if (kind === 'trellis') {
  const { startProxy, watchConfigFile } = await import('../../src/proxy/index.js');
  const proxy = await startProxy({ mode: 'sidecar', outboundPort: 0, adminPort: 0, bindAddress: '127.0.0.1' });
  const w = watchConfigFile(arg, (v, s) => proxy.applySnapshot(v, s), { pollMs: 100 });
  const r = await w.reload();
  if (!r?.ok) throw new Error(`snapshot refused: ${JSON.stringify(r)}`);
  process.stdout.write(`${JSON.stringify({ port: proxy.ports.outbound, admin: proxy.ports.admin })}\n`);
} else if (kind === 'http-proxy') {
  const { default: httpProxy } = await import('http-proxy');
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${arg}`, agent });
  proxy.on('error', (_e, _req, res) => {
    const r = res as import('node:http').ServerResponse;
    if (!r.headersSent) r.writeHead(502);
    r.end();
  });
  const server = createServer((req, res) => proxy.web(req, res));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
} else {
  throw new Error(`unknown kind ${kind}`);
}
