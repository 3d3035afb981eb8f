import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import type { ProxySecurity } from '../../src/proxy/mesh-security.js';
import { startProxy, type Proxy } from '../../src/proxy/server.js';
import { buildProxySnapshot } from '../../src/render/snapshot/index.js';
import type { WorkloadEndpoint } from '../../src/render/types.js';
import { createMeshListener, handToServer, peerSecurityOf, type MeshListener } from '../../src/security/index.js';
import { clusterOf, objectsFromYaml } from '../render/snapshot/fixtures.js';
import { closeServer, listen } from '../security/helpers/mesh.js';
import { httpGet, startTestMeshCa, until, type TestMeshCa } from './helpers/mesh-ca.js';

/**
 * From configuration to the wire: a MESH_INTERNAL ServiceEntry whose workloadSelector picks a
 * WorkloadEntry without a sidecar and a registered workload with one is rendered, and a real
 * Trellis sidecar applies the snapshot: mTLS to the sidecar endpoint, plaintext to the VM. A
 * namespace-wide PeerAuthentication DISABLE on the destination makes the rendered cluster plaintext.
 */
const CLIENT = 'cluster.local/ns/default/sa/client';
const HOST = 'billing.payments.mesh:8080';

let mesh: TestMeshCa;
let clientSecurity: ProxySecurity;
let client: Proxy;
let meshListener: MeshListener;
let sidecarEcho: Server;
let vm: Server;
let sidecarPort: number;
let vmPort: number;

const clientIdentity: ProxyIdentity = { id: 'test/default/client/0', cluster: 'test', namespace: 'default', workload: 'client', labels: { app: 'client' }, serviceAccount: 'client', mode: 'sidecar' };

function config(peerAuthentication: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: billing, namespace: payments}
spec:
  hosts: [billing.payments.mesh]
  location: MESH_INTERNAL
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: billing}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: billing-vm, namespace: payments}
spec:
  address: 127.0.0.1
  ports: {http: ${vmPort}}
  labels: {app: billing}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: billing, namespace: payments}
spec:
  host: billing.payments.mesh
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
${peerAuthentication}`;
}

function render(peerAuthentication = ''): ProxySnapshot {
  const registered: WorkloadEndpoint = {
    service: 'billing-pod', namespace: 'payments', address: '127.0.0.1', port: sidecarPort, labels: { app: 'billing' }, serviceAccount: 'billing', workload: 'billing', tlsMode: 'istio',
  };
  return buildProxySnapshot({ cluster: clusterOf(objectsFromYaml(config(peerAuthentication))), endpoints: [registered], proxy: clientIdentity });
}

function apply(s: ProxySnapshot): void {
  clientSecurity.observeSnapshot(s);
  expect(client.applySnapshot(s)).toMatchObject({ ok: true });
}

const get = (path: string) => httpGet(client.ports.outbound!, HOST, path);

async function round(): Promise<Array<{ endpoint: string; mtls: boolean; principal?: string }>> {
  const seen = [];
  for (let i = 0; i < 4; i++) {
    const res = await get(`/bill/${i}`);
    expect(res.status).toBe(200);
    seen.push(JSON.parse(res.body) as { endpoint: string; mtls: boolean; principal?: string });
  }
  return seen;
}

beforeAll(async () => {
  mesh = await startTestMeshCa({ cluster: 'test' });
  const billingSecurity = await mesh.security({ ...clientIdentity, id: 'test/payments/billing/0', namespace: 'payments', workload: 'billing', serviceAccount: 'billing' });
  clientSecurity = await mesh.security(clientIdentity);

  sidecarEcho = createServer((req, res) => {
    const security = peerSecurityOf(req.socket as Socket);
    res.end(JSON.stringify({ endpoint: 'sidecar', mtls: security.mtls, principal: security.mtls ? security.principal : undefined }));
  });
  meshListener = createMeshListener({ store: billingSecurity.store, modeFor: () => 'PERMISSIVE', onConnection: handToServer(sidecarEcho) });
  sidecarPort = await listen(meshListener.server);
  vm = createServer((_req, res) => res.end(JSON.stringify({ endpoint: 'vm', mtls: false })));
  vmPort = await listen(vm);

  client = await startProxy({ mode: 'sidecar', bindAddress: '127.0.0.1', outboundPort: 0, tls: clientSecurity.tls, inboundFilter: clientSecurity.inboundFilter });
}, 30_000);

afterAll(async () => {
  await client?.close({ drainMs: 0 });
  // Pools of clusters retired by the last apply close asynchronously: let them finish inside the test.
  if (meshListener) await until('the client closed its upstream connections', () => meshListener.connectionCount === 0);
  await meshListener?.close();
  for (const s of [sidecarEcho, vm]) if (s) await closeServer(s);
  await mesh?.close();
});

describe('rendered auto mTLS on real sockets', () => {
  test('the rendered endpoints carry their tlsMode and the sidecar honours it per endpoint', async () => {
    const snapshot = render();
    const endpoints = snapshot.endpoints.find((e) => e.cluster === 'outbound|8080||billing.payments.mesh')!.endpoints;
    expect(new Map(endpoints.map((e) => [e.port, e.tlsMode]))).toEqual(new Map([[sidecarPort, 'istio'], [vmPort, 'disabled']]));
    expect(snapshot.clusters.find((c) => c.name === 'outbound|8080||billing.payments.mesh')?.tls).toBeUndefined();
    apply(snapshot);
    const seen = await round();
    expect(seen.filter((s) => s.endpoint === 'sidecar')).toEqual([
      { endpoint: 'sidecar', mtls: true, principal: CLIENT },
      { endpoint: 'sidecar', mtls: true, principal: CLIENT },
    ]);
    expect(seen.filter((s) => s.endpoint === 'vm')).toEqual([{ endpoint: 'vm', mtls: false }, { endpoint: 'vm', mtls: false }]);
  });

  test('a namespace-wide PeerAuthentication DISABLE at the destination: plaintext to the sidecar endpoint too', async () => {
    const snapshot = render(`---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: payments}
spec:
  mtls: {mode: DISABLE}
`);
    expect(snapshot.clusters.find((c) => c.name === 'outbound|8080||billing.payments.mesh')?.tls?.mode).toBe('DISABLE');
    apply(snapshot);
    const seen = await round();
    expect(seen.map((s) => s.mtls)).toEqual([false, false, false, false]);
    expect(new Set(seen.map((s) => s.endpoint))).toEqual(new Set(['sidecar', 'vm']));
  });
});
