import { Agent, request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { generateKeyAndCsr } from '../../src/security/ca/csr.js';
import { certificateSummaries, CertificateStore, renewerFor, workloadCertificateFrom, type WorkloadCertificate } from '../../src/security/tls/certificate-store.js';
import { compileClientTls } from '../../src/security/tls/client-tls.js';
import { createMeshListener, handToServer, type MeshListener } from '../../src/security/tls/mesh-listener.js';
import { echoSecurityServer, issueWorkload, listen } from './helpers/mesh.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs();
let ca: CertificateAuthority;
let serverStore: CertificateStore;
let clientStore: CertificateStore;
let listener: MeshListener;
let port: number;

async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Short enough to see a rotation quickly (at ~3 s); renewals use pre-generated keys so a loaded machine still renews well before expiry. */
const SHORT_TTL_MS = 6000;
const serverIdentity = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'server' };

beforeAll(async () => {
  ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make(), notBeforeSkewMs: 0 });
  const keys = await Promise.all([1, 2, 3, 4, 5].map(() => generateKeyAndCsr(serverIdentity)));
  const renew = async () => {
    const next = keys.shift();
    if (!next) throw new Error('test ran out of pre-generated keys');
    const issued = ca.issueWorkloadCertificate(next.csrPem, serverIdentity, SHORT_TTL_MS);
    return workloadCertificateFrom(next.privateKeyPem, issued.certChainPem, issued.rootCertPem);
  };
  serverStore = await CertificateStore.create({ renew });
  clientStore = await CertificateStore.create({
    initial: await issueWorkload(ca, 'client'),
    renew: async () => issueWorkload(ca, 'client'),
  });
  const http = echoSecurityServer();
  listener = createMeshListener({ store: serverStore, modeFor: () => 'STRICT', onConnection: handToServer(http) });
  port = await listen(listener.server);
});

afterAll(async () => {
  serverStore.stop();
  clientStore.stop();
  await listener.close();
  tmp.cleanup();
});

describe('certificate rotation under load', () => {
  it('rotates at half-life; new connections get the new certificate; keep-alive connections are never dropped', async () => {
    const tls = compileClientTls({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/server'] }, clientStore)!;
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const firstSerial = serverStore.current.serialNumber;
    const rotated: WorkloadCertificate[] = [];
    serverStore.on('rotated', (cert: WorkloadCertificate) => rotated.push(cert));
    const dueInMs = serverStore.rotationDueAt() - Date.now();
    expect(dueInMs).toBeLessThanOrEqual(SHORT_TTL_MS / 2 + 1000);

    let ok = 0;
    const failures: string[] = [];
    /** serial the server presented on each keep-alive socket, first seen */
    const keepAliveSerials = new Map<TLSSocket, string>();
    const freshSerials: string[] = [];
    let stop = false;

    const once = (useAgent: boolean) =>
      new Promise<void>((resolve) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: '/load', ...(useAgent ? { agent } : { agent: false }), ...tls() },
          (res) => {
            const socket = res.socket as TLSSocket;
            const serial = socket.getPeerCertificate().serialNumber;
            if (useAgent) {
              const previous = keepAliveSerials.get(socket);
              if (previous && previous !== serial) failures.push('serial changed on a live connection');
              keepAliveSerials.set(socket, serial);
            } else freshSerials.push(serial);
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) ok += 1;
              else failures.push(`status ${res.statusCode}`);
              resolve();
            });
          },
        );
        req.on('error', (error) => {
          failures.push(error.message);
          resolve();
        });
        req.end();
      });

    const keepAliveWorker = async () => {
      while (!stop) await once(true);
    };
    const freshWorker = async () => {
      while (!stop) {
        await once(false);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const workers = [keepAliveWorker(), keepAliveWorker(), keepAliveWorker(), freshWorker()];
    await waitFor(() => rotated.length >= 1 && freshSerials.includes(rotated[0].serialNumber));
    const liveSocketsBefore = [...keepAliveSerials.keys()].filter((socket) => !socket.destroyed);
    stop = true;
    await Promise.all(workers);
    agent.destroy();

    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(rotated[0].serialNumber).not.toBe(firstSerial);
    // New connections saw each new certificate; the keep-alive connections opened before the
    // first rotation are still serving with the original one (not dropped, not renegotiated).
    expect(freshSerials).toContain(firstSerial);
    expect(freshSerials).toContain(rotated[0].serialNumber);
    expect(liveSocketsBefore.some((socket) => keepAliveSerials.get(socket) === firstSerial)).toBe(true);
  });

  it('retries a failed renewal with backoff and keeps serving the current certificate', async () => {
    let calls = 0;
    const current = await issueWorkload(ca, 'retry', 60_000);
    const store = await CertificateStore.create({
      initial: current,
      retryMinMs: 20,
      renew: renewerFor({ trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'retry' }, (csrPem) => {
        calls += 1;
        if (calls < 3) throw new Error('control plane unavailable');
        return ca.issueWorkloadCertificate(csrPem, { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'retry' }, 60_000);
      }),
    });
    const failures: Error[] = [];
    store.on('rotation-failed', (error: Error) => failures.push(error));
    await store.rotateNow().catch(() => undefined);
    expect(store.current.serialNumber).toBe(current.serialNumber);
    await waitFor(() => calls >= 3 && store.current.serialNumber !== current.serialNumber);
    expect(failures.map((error) => error.message)).toEqual(['control plane unavailable', 'control plane unavailable']);
    const summaries = certificateSummaries(store.current);
    expect(summaries.map((s) => [s.name, s.status])).toEqual([['default', 'ACTIVE'], ['ROOTCA', 'ACTIVE']]);
    expect(summaries[0].serialNumber).toBe(store.current.serialNumber);
    expect(JSON.stringify(summaries)).not.toContain('PRIVATE KEY');
    expect(certificateSummaries(store.current, store.current.notAfter.getTime() + 1)[0].status).toBe('EXPIRED');
    store.stop();
  });
});
