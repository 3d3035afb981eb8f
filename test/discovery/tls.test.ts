import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as http2connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spiffeAuthenticator } from '../../src/discovery/auth.js';
import type { DiscoveryClientEvent } from '../../src/discovery/client.js';
import { fetchProxies } from '../../src/discovery/debug-client.js';
import { createDiscoveryServer } from '../../src/discovery/server.js';
import type { DiscoveryServer } from '../../src/discovery/server.js';
import { ClientPool, waitFor } from './helpers.js';
import { identity, syntheticConfig, syntheticRender } from './synthetic-mesh.js';

/** A throwaway PKI made with the openssl CLI (an independent implementation): two CAs, a server and three clients. */
function makePki(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/O=${name}`, '-days', '2');
  const leaf = (name: string, issuer: string, san: string) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  };
  ca('mesh-ca');
  ca('rogue-ca');
  leaf('server', 'mesh-ca', 'DNS:localhost,IP:127.0.0.1');
  leaf('reviews', 'mesh-ca', 'URI:spiffe://cluster.local/ns/bookinfo/sa/reviews');
  leaf('ratings', 'mesh-ca', 'URI:spiffe://cluster.local/ns/bookinfo/sa/ratings');
  leaf('rogue', 'rogue-ca', 'URI:spiffe://cluster.local/ns/bookinfo/sa/reviews');
}

describe('discovery over mutual TLS', () => {
  let dir: string;
  let server: DiscoveryServer;
  let url: string;
  const pool = new ClientPool();
  const pem = (name: string) => readFileSync(join(dir, name));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-discovery-tls-'));
    makePki(dir);
    server = createDiscoveryServer({
      render: syntheticRender(syntheticConfig(['bookinfo'], 1)),
      tls: { key: pem('server.key'), cert: pem('server.crt'), ca: pem('mesh-ca.crt') },
      authenticate: spiffeAuthenticator('cluster.local'),
    });
    ({ url } = await server.listen(0));
  });

  afterAll(async () => {
    await pool.stopAll();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a proxy whose certificate SPIFFE id matches its hello, and records the peer certificate', async () => {
    expect(url).toMatch(/^https:\/\//);
    const client = pool.start(url, identity('east', 'bookinfo', 'reviews', 'r1'), {
      tls: () => ({ ca: pem('mesh-ca.crt'), cert: pem('reviews.crt'), key: pem('reviews.key') }),
    });
    await waitFor(() => server.findProxy('reviews/r1')?.sync === 'SYNCED', 'SYNCED over mTLS');
    expect(client.runningHash).toBe(server.findProxy('reviews/r1')?.desiredHash);
    const cert = server.findProxy('reviews/r1')?.certificate;
    expect(cert).toMatchObject({ source: 'mtls-peer', spiffeId: 'spiffe://cluster.local/ns/bookinfo/sa/reviews' });
    const serial = execFileSync('openssl', ['x509', '-in', join(dir, 'reviews.crt'), '-noout', '-serial']).toString().trim().split('=')[1];
    expect(cert?.serialNumber.toUpperCase()).toBe(serial.toUpperCase());
  });

  it('refuses a proxy that claims another service account than its certificate holds', async () => {
    const events: DiscoveryClientEvent[] = [];
    const client = pool.start(url, identity('east', 'bookinfo', 'reviews', 'impostor'), {
      tls: { ca: pem('mesh-ca.crt'), cert: pem('ratings.crt'), key: pem('ratings.key') },
    });
    client.events.on('event', (e) => events.push(e));
    const refused = await waitFor(() => events.find((e) => e.type === 'error-message'), 'refusal');
    expect(refused).toEqual({
      type: 'error-message',
      code: 'unauthenticated',
      message: 'certificate identity spiffe://cluster.local/ns/bookinfo/sa/ratings does not match spiffe://cluster.local/ns/bookinfo/sa/reviews',
    });
    expect(server.findProxy('reviews/impostor')).toBeUndefined();
    expect(client.runningHash).toBeNull();
  });

  it('refuses at the TLS handshake a client certificate from another CA, and one without a certificate', async () => {
    for (const tls of [{ cert: pem('rogue.crt'), key: pem('rogue.key') }, {}]) {
      const session = http2connect(url, { ca: pem('mesh-ca.crt'), ...tls });
      const outcome = await new Promise<string>((resolve) => {
        session.on('error', (err) => resolve(`error: ${err.message}`));
        session.on('close', () => resolve('closed'));
        const req = session.request({ ':method': 'GET', ':path': '/debug/proxies' });
        req.on('response', (h) => resolve(`status ${h[':status']}`));
        req.on('error', (err) => resolve(`error: ${err.message}`));
        req.end();
      });
      session.destroy();
      expect(outcome).not.toMatch(/^status/);
    }
  });

  it('serves the debug API over HTTPS to a client with a mesh certificate', async () => {
    const { proxies } = await fetchProxies({ url, caFile: join(dir, 'mesh-ca.crt'), certFile: join(dir, 'reviews.crt'), keyFile: join(dir, 'reviews.key') });
    expect(proxies.map((p) => p.id)).toEqual(['east/bookinfo/reviews/r1']);
  });
});
