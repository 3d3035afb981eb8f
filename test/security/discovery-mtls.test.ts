import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createDiscoveryServer, spiffeAuthenticator, startDiscoveryClient, type AuthContext, type DiscoveryServer } from '../../src/discovery/index.js';
import type { ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import { startMeshAgent, type MeshAgent } from '../../src/proxy/agent.js';
import { CertificateAuthority, MeshCaService, generateKeyAndCsr } from '../../src/security/index.js';
import { snapshot } from '../proxy/fixtures.js';
import { tempDirs } from './helpers/tmp.js';
import { until as waitUntil } from './helpers/wait.js';

const until = <T>(what: string, probe: () => T | undefined | false): Promise<T> => waitUntil(what, probe, 15_000);

/**
 * A real mesh agent bootstraps its first certificate with the join token over TLS, then holds its
 * discovery stream over mutual TLS with that workload certificate; the operator authenticates it by
 * SPIFFE id. After a rotation, a reconnect presents the new certificate. Clients without a
 * certificate, with one from another CA, or claiming another identity are refused.
 */
const run = promisify(execFile);
const tmp = tempDirs();
const TRUST_DOMAIN = 'cluster.local';
const TTL_MS = 4000; // rotation at half-life: about every 2 s
let service: MeshCaService;
let token: string;
let discovery: DiscoveryServer | undefined;
let discoveryPort: number;
let agent: MeshAgent | undefined;
/** Serials the agent's certificate store held: the first one, then each rotation's. */
const serials: string[] = [];
/** Every authentication attempt the discovery server saw: the identity claimed, the certificate serial, the verdict. */
const attempts: Array<{ id: string; serial?: string; spiffeId?: string; ok: boolean }> = [];

const identity: ProxyIdentity = {
  id: 'c1/bookinfo/ratings-v1/0', cluster: 'c1', namespace: 'bookinfo', workload: 'ratings-v1', labels: { app: 'ratings' }, service: 'ratings', serviceAccount: 'bookinfo-ratings', mode: 'sidecar',
};

function render(proxy: ProxyIdentity): ProxySnapshot {
  return { ...snapshot({}), proxy };
}

async function startDiscovery(port = 0): Promise<void> {
  const check = spiffeAuthenticator(TRUST_DOMAIN, { requireClusterBinding: true });
  discovery = createDiscoveryServer({
    render,
    debounceMs: 10,
    tls: service.discoveryServerTls(),
    authenticate: async (ctx: AuthContext) => {
      const result = await check(ctx);
      attempts.push({ id: ctx.hello.identity.id, serial: ctx.peerCertificate?.serialNumber, spiffeId: ctx.peerCertificate?.spiffeId, ok: result.ok });
      return result;
    },
  });
  discoveryPort = (await discovery.listen(port, '127.0.0.1')).port;
}

beforeAll(async () => {
  const dir = tmp.make();
  service = await MeshCaService.start({ trustDomain: TRUST_DOMAIN, caDir: dir, tokenDir: join(dir, 'tokens') });
  token = await service.tokens.tokenFor('c1');
  await startDiscovery();
  agent = await startMeshAgent({
    proxy: { mode: 'sidecar', bindAddress: '127.0.0.1', inboundPort: 0, outboundPort: 0, stateDir: join(dir, 'proxy') },
    discovery: { url: `https://127.0.0.1:${discoveryPort}`, identity, heartbeatMs: 200 },
    security: { bootstrapUrl: service.bootstrapUrl, cluster: 'c1', token, trustDomain: TRUST_DOMAIN, ttlMs: TTL_MS },
  });
  const store = agent.security!.store;
  serials.push(store.current.serialNumber);
  store.on('rotated', (cert: { serialNumber: string }) => serials.push(cert.serialNumber));
}, 30_000);

afterAll(async () => {
  await agent?.stop({ drainMs: 0 });
  await discovery?.close();
  await service?.close();
  tmp.cleanup();
});

describe('discovery over mTLS with the bootstrapped workload certificate', () => {
  it('the agent connects with its workload certificate and is authenticated by SPIFFE id', async () => {
    const status = await until('the agent synced', () => discovery!.status().find((p) => p.id === identity.id && p.connected && p.sync === 'SYNCED'));
    const first = attempts.find((a) => a.id === identity.id && a.ok);
    expect(first?.spiffeId).toBe('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings');
    expect(serials).toContain(first?.serial);
    expect(status.certificate?.spiffeId).toBe('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings');
  });

  it('after a rotation, a reconnect presents the new certificate', async () => {
    const store = agent!.security!.store;
    const before = store.current.serialNumber;
    await until('a rotation', () => store.current.serialNumber !== before);
    // The operator restarts on the same port: the proxy reconnects with what it holds now.
    await discovery!.close();
    const seen = attempts.length;
    await startDiscovery(discoveryPort);
    const again = await until('a reconnect', () => attempts.slice(seen).find((a) => a.id === identity.id && a.ok));
    expect(again.serial).not.toBe(before);
    expect(serials.slice(serials.indexOf(before) + 1)).toContain(again.serial);
    await until('synced again', () => discovery!.status().find((p) => p.id === identity.id && p.connected && p.sync === 'SYNCED'));
  }, 20_000);

  it('refuses a client with no certificate or one from another CA (curl as an independent client)', async () => {
    const dir = tmp.make();
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const root = file('root.pem', service.ca.rootCertPem);
    const mesh = await issuedFiles(service.ca, 'mesh');
    const foreignCa = await CertificateAuthority.open({ trustDomain: TRUST_DOMAIN, stateDir: tmp.make() });
    const foreign = await issuedFiles(foreignCa, 'foreign');
    const url = `https://127.0.0.1:${discoveryPort}/no-such-path`;
    const curl = (args: string[]) => run('curl', ['-sS', '--http2', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', root, ...args, url]);

    // A mesh certificate completes the handshake (the path itself is unknown: 404).
    expect((await curl(['--cert', file('mesh.pem', mesh.cert), '--key', file('mesh-key.pem', mesh.key)])).stdout).toBe('404');
    await expect(curl([])).rejects.toMatchObject({ code: expect.any(Number) });
    await expect(curl(['--cert', file('foreign.pem', foreign.cert), '--key', file('foreign-key.pem', foreign.key)])).rejects.toMatchObject({ code: expect.any(Number) });
  });

  it('refuses a mesh certificate whose SPIFFE id is not the identity the hello claims', async () => {
    const mesh = await issuedFiles(service.ca, 'bookinfo-reviews');
    const impostor = { ...identity, id: 'c1/bookinfo/impostor/0', workload: 'impostor' }; // claims bookinfo-ratings
    const client = startDiscoveryClient({
      url: `https://127.0.0.1:${discoveryPort}`,
      identity: impostor,
      tls: { ca: service.ca.rootCertPem, cert: mesh.cert, key: mesh.key },
      apply: () => ({ ok: true }),
      backoff: { initialMs: 5000, maxMs: 5000 },
    });
    try {
      const refused = await until('the impostor refused', () => attempts.find((a) => a.id === impostor.id));
      expect(refused.ok).toBe(false);
      expect(refused.spiffeId).toBe('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews');
      expect(discovery!.status().find((p) => p.id === impostor.id)?.connected ?? false).toBe(false);
    } finally {
      await client.stop();
    }
  });
});

async function issuedFiles(ca: CertificateAuthority, serviceAccount: string): Promise<{ cert: string; key: string }> {
  const id = { trustDomain: TRUST_DOMAIN, namespace: 'bookinfo', serviceAccount };
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(id);
  return { cert: ca.issueWorkloadCertificate(csrPem, id).certChainPem, key: privateKeyPem };
}
