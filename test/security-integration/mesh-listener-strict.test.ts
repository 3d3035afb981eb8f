import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CertificateAuthority, CertificateStore, createMeshListener, handToServer, type MeshListener } from '../../src/security/index.js';
import { closeServer, issueWorkload, listen } from '../security/helpers/mesh.js';

/** The standalone mesh listener answers plaintext on a STRICT port as Istio's sidecar does: a reset, no bytes. */
let dir: string;
let store: CertificateStore;
let listener: MeshListener;
let app: Server;
let port: number;
const rejected: string[] = [];
let served = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-strict-'));
  const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: dir });
  const initial = await issueWorkload(ca, 'server');
  store = await CertificateStore.create({ initial, renew: () => issueWorkload(ca, 'server') });
  app = createServer((_req, res) => {
    served++;
    res.end('ok');
  });
  listener = createMeshListener({ store, modeFor: () => 'STRICT', onConnection: handToServer(app), onRejected: (reason) => rejected.push(reason) });
  port = await listen(listener.server);
});

afterAll(async () => {
  await listener?.close();
  if (app) await closeServer(app);
  store?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('mesh listener, STRICT', () => {
  test('a plaintext HTTP request gets a connection reset and no HTTP answer', async () => {
    const outcome = await new Promise<{ bytes: number; error?: string }>((resolve) => {
      let bytes = 0;
      let error: string | undefined;
      const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
      socket.on('close', () => resolve({ bytes, error }));
    });
    expect(outcome).toEqual({ bytes: 0, error: 'ECONNRESET' });
    expect(rejected).toEqual(['plaintext-refused']);
    expect(served).toBe(0);
  });
});
