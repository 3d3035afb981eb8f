import { connect } from 'node:http2';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { request } from 'undici';
import { DemoConfigRepo } from '../../src/demo/config-repo.js';
import { startDiscoveryClient, type DiscoveryClientEvent } from '../../src/discovery/index.js';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { startMeshAgent, type MeshAgent } from '../../src/proxy/agent.js';
import { ControlPlane } from '../../src/reconciler/control-plane.js';
import { startGitHttpServer, type GitHttpServer } from '../../src/reconciler/git-http-server.js';
import { generateKeyAndCsr, redactOptions } from '../../src/security/index.js';
import { PROJECT_ROOT } from '../helpers/shared.js';
import { tempDirs } from './helpers/tmp.js';
import { until as waitUntil } from './helpers/wait.js';

const until = <T>(what: string, probe: () => T | undefined | false): Promise<T> => waitUntil(what, probe, 30_000);

/**
 * The operator's wiring (ControlPlane with security.discoveryMtls): a gateway agent bootstraps with
 * the cluster's join token (reaching TLS from the operator API's /v1/bootstrap), then its discovery
 * stream is mTLS with that certificate and the operator serves it its snapshot; a client without a
 * workload certificate never gets one.
 */
const tmp = tempDirs();
let git: GitHttpServer;
let controlPlane: ControlPlane;
let agent: MeshAgent | undefined;
let operatorLog = '';

const gateway: ProxyIdentity = {
  id: 'dev/istio-system/istio-ingressgateway/0',
  cluster: 'dev',
  namespace: 'istio-system',
  workload: 'istio-ingressgateway',
  labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
  serviceAccount: 'istio-ingressgateway-service-account',
  mode: 'gateway',
};

beforeAll(async () => {
  const root = tmp.make();
  await DemoConfigRepo.create({ sampleRoot: PROJECT_ROOT, workDir: join(root, 'work'), bareDir: join(root, 'git', 'config.git'), analysisInterval: '5s', minRequests: 5, maxP99LatencyMs: 5000 });
  git = await startGitHttpServer({ root: join(root, 'git') });
  controlPlane = new ControlPlane({
    repo: git.url('config.git'),
    ref: { branch: 'main' },
    schedule: { intervalMs: 60_000 },
    stateDir: join(root, 'operator'),
    host: '127.0.0.1',
    port: 0,
    statusBranch: false,
    leaderElection: 'none',
    clusters: ['dev'],
    discovery: { host: '127.0.0.1', port: 0 },
    security: { discoveryMtls: true },
    logger: pino(
      { ...redactOptions, level: 'warn' },
      new Writable({
        write(chunk, _encoding, done) {
          operatorLog += chunk.toString();
          done();
        },
      }),
    ),
  });
  await controlPlane.start();
}, 60_000);

afterAll(async () => {
  await agent?.stop({ drainMs: 0 });
  await controlPlane?.stop();
  await git?.close();
  tmp.cleanup();
});

describe('ControlPlane with the mesh CA and discoveryMtls', () => {
  it('serves discovery over https and bootstrap on its own TLS port; the API only points there', async () => {
    expect(controlPlane.discoveryUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(controlPlane.bootstrapUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1\/bootstrap$/);
    const answer = await request(`${controlPlane.operator.url}/v1/bootstrap`);
    expect(await answer.body.json()).toEqual({ tlsUrl: controlPlane.bootstrapUrl });
    const plain = await request(`${controlPlane.operator.url}/v1/bootstrap`, { method: 'POST', body: '{}' });
    expect(plain.statusCode).toBe(403);
    await plain.body.dump();
  });

  it('an agent bootstraps with the join token, then syncs over mTLS as its SPIFFE identity', async () => {
    const token = await controlPlane.joinTokenStore!.tokenFor('dev');
    agent = await startMeshAgent({
      proxy: { mode: 'gateway', bindAddress: '127.0.0.1', stateDir: join(tmp.make(), 'gateway') },
      discovery: { url: controlPlane.discoveryUrl, identity: gateway, heartbeatMs: 500 },
      security: { bootstrapUrl: `${controlPlane.operator.url}/v1/bootstrap`, cluster: 'dev', token, trustDomain: 'cluster.local' },
    });
    expect(agent.security!.store.current.spiffeId).toBe('spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');
    const synced = await until('the gateway synced', () => controlPlane.discovery.status().find((p) => p.id === gateway.id && p.connected && p.sync === 'SYNCED'));
    expect(synced.meshVersion).toBeTruthy();
    expect(agent.proxy.currentSnapshot()?.proxy.id).toBe(gateway.id);
  }, 60_000);

  it('the certificate is bound to the token cluster: claiming another cluster, or holding an unbound one, is refused with the reason in the log', async () => {
    const current = agent!.security!.store.current;
    expect(agent!.security!.certificateInfo().cluster).toBe('dev');
    const claim = async (cluster: string, cert: { certChainPem: string; privateKeyPem: string }): Promise<string> => {
      const events: DiscoveryClientEvent[] = [];
      const client = startDiscoveryClient({
        url: controlPlane.discoveryUrl,
        identity: { ...gateway, id: `${cluster}/istio-system/istio-ingressgateway/impostor`, cluster },
        tls: { ca: current.rootCertPem, cert: cert.certChainPem, key: cert.privateKeyPem },
        apply: () => ({ ok: true }),
        backoff: { initialMs: 5000, maxMs: 5000 },
      });
      client.events.on('event', (e) => events.push(e));
      try {
        const refused = await until('an answer', () => events.find((e) => e.type === 'error-message' || e.type === 'applied'));
        return refused.type === 'error-message' ? refused.message : `not refused: ${refused.type}`;
      } finally {
        await client.stop();
      }
    };
    const crossCluster = await claim('prod', current);
    expect(crossCluster).toBe('certificate is bound to cluster dev; hello claims prod');
    const id = { trustDomain: 'cluster.local', namespace: gateway.namespace, serviceAccount: gateway.serviceAccount };
    const { privateKeyPem, csrPem } = await generateKeyAndCsr(id);
    const unbound = controlPlane.certificateAuthority!.issueWorkloadCertificate(csrPem, id);
    expect(await claim('dev', { certChainPem: unbound.certChainPem, privateKeyPem })).toMatch(/is bound to no cluster; hello claims dev/);
    // The operator's proxy status (its admin API) shows the gateway's certificate cluster, and never a token or key.
    const api = await request(`${controlPlane.operator.url}/debug/proxies`);
    const statusText = await api.body.text();
    const listed = (JSON.parse(statusText) as { proxies: Array<{ id: string; certificate?: { cluster?: string } }> }).proxies.find((p) => p.id === gateway.id);
    expect(listed?.certificate?.cluster).toBe('dev');
    const secret = (await controlPlane.joinTokenStore!.tokenFor('dev')).split('.')[0];
    for (const text of [statusText, operatorLog]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain('PRIVATE KEY');
    }
    const refusals = operatorLog.split('\n').filter((line) => line.includes('discovery stream refused'));
    expect(refusals.some((line) => line.includes(crossCluster))).toBe(true);
    expect(refusals.some((line) => line.includes('is bound to no cluster'))).toBe(true);
  }, 30_000);

  it('a client trusting the root but without a workload certificate is refused at the TLS layer', async () => {
    const session = connect(controlPlane.discoveryUrl, { ca: controlPlane.certificateAuthority!.rootCertPem });
    const failure = await new Promise<Error>((resolve) => {
      session.on('error', resolve);
      const stream = session.request({ ':method': 'POST', ':path': '/' }, { endStream: true });
      stream.on('error', resolve);
      stream.on('response', (headers) => resolve(new Error(`unexpected answer ${String(headers[':status'])}`)));
    });
    session.destroy();
    expect(failure.message).toMatch(/alert certificate required/);
  });
});
