import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import {
  createDiscoveryServer,
  spiffeAuthenticator,
  startDiscoveryClient,
  type AuthContext,
  type CertificateInfo,
  type DiscoveryClient,
  type DiscoveryClientEvent,
  type DiscoveryServer,
} from '../../src/discovery/index.js';
import type { ProxyIdentity, ProxySnapshot } from '../../src/mesh/snapshot.js';
import { MeshCaService, generateKeyAndCsr, redactOptions, requestBootstrapCertificate, type WorkloadCertificate } from '../../src/security/index.js';
import { snapshot } from '../proxy/fixtures.js';
import { tempDirs } from './helpers/tmp.js';

/**
 * The join token is per cluster, and so is the certificate it buys: the mesh CA writes the token's
 * cluster into the workload certificate (subject OU), and discovery over mutual TLS refuses a hello
 * that claims another cluster than the certificate's, or (as the operator runs it) a certificate
 * bound to no cluster.
 */
const tmp = tempDirs();
const TRUST_DOMAIN = 'cluster.local';
let service: MeshCaService;
let discovery: DiscoveryServer;
let url: string;
let logText = '';
const clients: DiscoveryClient[] = [];

const identity = (cluster: string, workload = 'reviews'): ProxyIdentity => ({
  id: `${cluster}/bookinfo/${workload}/0`, cluster, namespace: 'bookinfo', workload, labels: { app: workload }, service: workload, serviceAccount: 'bookinfo-reviews', mode: 'sidecar',
});

async function certificateFor(cluster: string): Promise<WorkloadCertificate> {
  return requestBootstrapCertificate({
    url: service.bootstrapUrl, cluster, token: await service.tokens.tokenFor(cluster), trustDomain: TRUST_DOMAIN, namespace: 'bookinfo', serviceAccount: 'bookinfo-reviews',
  });
}

/** A discovery client holding `cert` and claiming `claimed`; resolves with its first refusal or its first applied snapshot. */
async function connectAs(claimed: ProxyIdentity, cert: { certChainPem: string; privateKeyPem: string }): Promise<DiscoveryClientEvent> {
  const events: DiscoveryClientEvent[] = [];
  const client = startDiscoveryClient({
    url,
    identity: claimed,
    tls: { ca: service.ca.rootCertPem, cert: cert.certChainPem, key: cert.privateKeyPem },
    apply: () => ({ ok: true }),
    backoff: { initialMs: 5000, maxMs: 5000 },
  });
  clients.push(client);
  client.events.on('event', (e) => events.push(e));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const outcome = events.find((e) => e.type === 'error-message' || e.type === 'applied');
    if (outcome) return outcome;
    if (Date.now() > deadline) throw new Error(`no answer for ${claimed.id}: ${JSON.stringify(events)}`);
    await delay(20);
  }
}

beforeAll(async () => {
  const dir = tmp.make();
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logText += chunk.toString();
      done();
    },
  });
  const logger = pino({ ...redactOptions, level: 'info' }, sink);
  service = await MeshCaService.start({ trustDomain: TRUST_DOMAIN, caDir: dir, tokenDir: join(dir, 'tokens'), logger });
  discovery = createDiscoveryServer({
    render: (proxy: ProxyIdentity): ProxySnapshot => ({ ...snapshot({}), proxy }),
    debounceMs: 10,
    tls: service.discoveryServerTls(),
    // As the operator runs it.
    authenticate: spiffeAuthenticator(TRUST_DOMAIN, { requireClusterBinding: true }),
    logger,
  });
  url = (await discovery.listen(0, '127.0.0.1')).url;
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.stop();
});

afterAll(async () => {
  await discovery?.close();
  await service?.close();
  tmp.cleanup();
});

describe('workload certificates are bound to the join token cluster', () => {
  it('the certificate bought with cluster-a token carries OU=cluster-a (openssl reads it)', async () => {
    const cert = await certificateFor('cluster-a');
    const file = join(tmp.make(), 'leaf.pem');
    writeFileSync(file, cert.certChainPem);
    const subject = execFileSync('openssl', ['x509', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' }).trim();
    expect(subject).toBe('subject=OU=cluster-a');
  });

  it('a proxy of cluster-a is served over mTLS, and its status shows the certificate cluster', async () => {
    const cert = await certificateFor('cluster-a');
    expect(await connectAs(identity('cluster-a'), cert)).toMatchObject({ type: 'applied' });
    const status = discovery.status().find((p) => p.id === identity('cluster-a').id);
    expect(status?.certificate).toMatchObject({ source: 'mtls-peer', cluster: 'cluster-a', serialNumber: cert.serialNumber });
  });

  it('a proxy of cluster-a claiming cluster-b is refused, and the operator log says why', async () => {
    const cert = await certificateFor('cluster-a');
    const claimed = identity('cluster-b', 'impostor');
    const outcome = await connectAs(claimed, cert);
    const reason = 'certificate is bound to cluster cluster-a; hello claims cluster-b';
    expect(outcome).toEqual({ type: 'error-message', code: 'unauthenticated', message: reason });
    expect(discovery.status().find((p) => p.id === claimed.id)?.connected ?? false).toBe(false);
    const refusal = logText.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.message === reason);
    expect(refusal).toMatchObject({ msg: 'discovery stream refused', code: 'unauthenticated' });
  });

  it('a mesh certificate bound to no cluster is refused with a clear reason', async () => {
    const id = { trustDomain: TRUST_DOMAIN, namespace: 'bookinfo', serviceAccount: 'bookinfo-reviews' };
    const { privateKeyPem, csrPem } = await generateKeyAndCsr(id);
    const unbound = service.ca.issueWorkloadCertificate(csrPem, id);
    const outcome = await connectAs(identity('cluster-a', 'unbound'), { certChainPem: unbound.certChainPem, privateKeyPem });
    expect(outcome).toMatchObject({ type: 'error-message', code: 'unauthenticated' });
    expect((outcome as { message: string }).message).toBe(
      `certificate ${unbound.serialNumber} is bound to no cluster; hello claims cluster-a (get a new certificate with the cluster's join token)`,
    );
  });
});

describe('spiffeAuthenticator', () => {
  const peer = (cluster?: string): CertificateInfo => ({
    serialNumber: '01', notBefore: '', notAfter: '', spiffeId: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews', ...(cluster ? { cluster } : {}),
  });
  const context = (claimed: string, certificate: CertificateInfo): AuthContext => ({
    hello: { v: 1, type: 'hello', identity: identity(claimed), proxyVersion: 'test', meshVersion: 'v1', runningHash: null },
    peerCertificate: certificate,
    headers: {},
    remoteAddress: '127.0.0.1',
  });

  it('checks a bound certificate always; an unbound one only where binding is required', () => {
    const lenient = spiffeAuthenticator(TRUST_DOMAIN);
    const strict = spiffeAuthenticator(TRUST_DOMAIN, { requireClusterBinding: true });
    expect(lenient(context('east', peer('east')))).toEqual({ ok: true });
    expect(lenient(context('west', peer('east')))).toEqual({ ok: false, reason: 'certificate is bound to cluster east; hello claims west' });
    // A PKI that does not bind clusters (openssl-made certificates in test/discovery) keeps working where binding is not required.
    expect(lenient(context('east', peer()))).toEqual({ ok: true });
    expect(strict(context('east', peer()))).toMatchObject({ ok: false });
    expect(strict(context('east', peer('east')))).toEqual({ ok: true });
  });
});
