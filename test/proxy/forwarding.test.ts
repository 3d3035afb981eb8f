import { afterEach, describe, expect, it } from '@jest/globals';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import type { Proxy } from '../../src/proxy/index.js';
import { cluster, endpoint, route, snapshot, toCluster } from './fixtures.js';
import { send, startSidecar, startUpstream, type Upstream } from './helpers.js';

let proxy: Proxy | undefined;
const ups: Upstream[] = [];
afterEach(async () => {
  await proxy?.close({ drainMs: 0 });
  proxy = undefined;
  await Promise.all(ups.splice(0).map((u) => u.close()));
});

async function upstream(...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const u = await startUpstream(...args);
  ups.push(u);
  return u;
}

describe('sidecar outbound forwarding', () => {
  it('routes by Host header, strips hop-by-hop headers, adds x-forwarded-* and x-request-id', async () => {
    const a = await upstream();
    proxy = await startSidecar(
      snapshot({
        hosts: [{ domains: ['reviews', 'reviews:9080'], routes: [route({ action: toCluster('c') })] }],
        clusters: [cluster('c')],
        endpoints: { c: [endpoint(a.port)] },
      }),
    );
    const r = await send(proxy.ports.outbound!, {
      path: '/x?y=1',
      headers: { host: 'reviews:9080', connection: 'keep-alive, x-private', 'x-private': 'secret', 'keep-alive': 'timeout=5', te: 'gzip', 'x-keep': 'yes' },
    });
    expect(r.status).toBe(200);
    expect(r.body).toBe(`hello from ${a.port}`);
    const seen = a.seen[0];
    expect(seen.url).toBe('/x?y=1');
    expect(seen.headers.host).toBe('reviews:9080');
    expect(seen.headers['x-private']).toBeUndefined();
    expect(seen.headers['te']).toBeUndefined();
    expect(seen.headers['x-keep']).toBe('yes');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await send(proxy.ports.outbound!, { headers: { host: 'reviews', 'x-request-id': 'abc-123' } });
    expect(kept.status).toBe(200);
    expect(a.seen[1].headers['x-request-id']).toBe('abc-123');
  });

  it('propagates W3C trace context (same trace id, new span id) and keeps x-request-id end to end', async () => {
    const a = await upstream();
    proxy = await startSidecar(
      snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(a.port)] } }),
    );
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    await send(proxy.ports.outbound!, { headers: { host: 'svc', traceparent: `00-${trace}-00f067aa0ba902b7-01`, 'x-request-id': 'rid-1' } });
    const h = a.seen[0].headers;
    expect(h.traceparent).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
    expect(h.traceparent).not.toContain('00f067aa0ba902b7');
    expect(h['x-b3-traceid']).toBe(trace);
    expect(h['x-b3-parentspanid']).toBe('00f067aa0ba902b7');
    expect(h['x-request-id']).toBe('rid-1');
  });

  it('serves absolute-form (forward proxy) requests', async () => {
    const a = await upstream();
    proxy = await startSidecar(
      snapshot({
        hosts: [{ domains: ['ratings:9080'], routes: [route({ action: toCluster('c') })] }],
        clusters: [cluster('c')],
        endpoints: { c: [endpoint(a.port)] },
      }),
    );
    const r = await send(proxy.ports.outbound!, { path: 'http://ratings:9080/ratings/1?x=2', headers: { host: 'ignored' } });
    expect(r.status).toBe(200);
    expect(a.seen[0].url).toBe('/ratings/1?x=2');
    expect(a.seen[0].headers.host).toBe('ratings:9080');
  });

  it('passes unknown hosts through with ALLOW_ANY and refuses them with 502 NR under REGISTRY_ONLY', async () => {
    const a = await upstream();
    proxy = await startSidecar(snapshot({ outboundTrafficPolicy: 'ALLOW_ANY' }));
    const ok = await send(proxy.ports.outbound!, { path: '/p', headers: { host: `127.0.0.1:${a.port}` } });
    expect(ok.status).toBe(200);
    expect(a.seen[0].url).toBe('/p');
    expect(proxy.applySnapshot(snapshot({ outboundTrafficPolicy: 'REGISTRY_ONLY' })).ok).toBe(true);
    const refused = await send(proxy.ports.outbound!, { path: '/p', headers: { host: `127.0.0.1:${a.port}` } });
    expect(refused.status).toBe(502);
    expect(refused.headers['x-trellis-response-flags']).toBe('NR');
    expect(a.hits).toBe(1);
  });

  it('streams request and response bodies both ways (chunked, large)', async () => {
    const a = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    }, { bufferBody: false });
    proxy = await startSidecar(
      snapshot({ hosts: [{ domains: ['*'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(a.port)] } }),
    );
    const big = Buffer.alloc(3 * 1024 * 1024, 'abcdefgh');
    const r = await send(proxy.ports.outbound!, { method: 'POST', headers: { host: 'echo', 'transfer-encoding': 'chunked' }, body: big });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(big.length);
    expect(r.body === big.toString()).toBe(true);
  });

  it('answers Expect: 100-continue and forwards the body', async () => {
    const a = await upstream((_req, res, body) => res.end(`got ${body}`));
    proxy = await startSidecar(
      snapshot({ hosts: [{ domains: ['*'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(a.port)] } }),
    );
    const result = await new Promise<string>((resolve, reject) => {
      const sock = connect(proxy!.ports.outbound!, '127.0.0.1');
      let buf = '';
      let sentBody = false;
      sock.on('data', (d) => {
        buf += d.toString();
        if (!sentBody && buf.includes('100 Continue')) {
          sentBody = true;
          sock.write('hello');
        }
        if (buf.includes('got hello')) { sock.end(); resolve(buf); }
      });
      sock.on('error', reject);
      sock.write('POST /up HTTP/1.1\r\nhost: svc\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n');
    });
    expect(result).toMatch(/^HTTP\/1.1 100 Continue/);
    expect(result).toMatch(/HTTP\/1.1 200 OK/);
    expect(a.seen[0].headers.expect).toBeUndefined();
  });

  it('keeps upstream connections alive across requests', async () => {
    const sockets = new Set<unknown>();
    const a = await upstream((req, res) => { sockets.add(req.socket); res.end('ok'); });
    proxy = await startSidecar(
      snapshot({ hosts: [{ domains: ['*'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(a.port)] } }),
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) expect((await send(proxy.ports.outbound!, { headers: { host: 'svc' }, agent })).status).toBe(200);
    agent.destroy();
    expect(sockets.size).toBe(1);
  });
});
