import { createServer as createHttpServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { InboundPolicy, MeshSettings, UpstreamCluster } from '../../src/mesh/snapshot.js';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { createInboundFilter, createTlsProvider, inboundIdentityOf, type SecurityTlsProvider } from '../../src/security/proxy-adapters.js';
import { CertificateStore } from '../../src/security/tls/certificate-store.js';
import { SecureNamingError } from '../../src/security/tls/client-tls.js';
import { createMeshListener, handToServer, type MeshListener } from '../../src/security/tls/mesh-listener.js';
import { issueWorkload, listen } from './helpers/mesh.js';
import { tempDirs } from './helpers/tmp.js';

const tmp = tempDirs();
const stores: CertificateStore[] = [];
let listener: MeshListener;
let port: number;
let clientTls: SecurityTlsProvider;
let jwtKey: CryptoKey;
let jwks: string;

const mesh = { trustDomain: 'cluster.local', extensionProviders: [] } as unknown as MeshSettings;
/** The policy the server applies; tests swap it. */
let inbound: InboundPolicy;

const cluster = (tls?: UpstreamCluster['tls']): UpstreamCluster => ({ name: 'outbound|8080||server.shop.svc.cluster.local', service: 'server.shop.svc.cluster.local', port: 8080, tls } as UpstreamCluster);

beforeAll(async () => {
  const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir: tmp.make() });
  const never = async () => {
    throw new Error('no rotation');
  };
  const [serverStore, clientStore] = await Promise.all([
    issueWorkload(ca, 'server').then((initial) => CertificateStore.create({ initial, renew: never })),
    issueWorkload(ca, 'client').then((initial) => CertificateStore.create({ initial, renew: never })),
  ]);
  stores.push(serverStore, clientStore);
  clientTls = createTlsProvider(clientStore);
  const keys = await generateKeyPair('RS256');
  jwtKey = keys.privateKey;
  jwks = JSON.stringify({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'k', alg: 'RS256' }] });

  const filter = createInboundFilter();
  // A stand-in for the proxy's inbound handler: filter, then echo what would be forwarded.
  const http = createHttpServer((req: IncomingMessage, res) => {
    const socket = req.socket as TLSSocket;
    const forwarded = { ...req.headers };
    filter(req, {
      snapshot: { inbound, mesh },
      port,
      remoteAddress: socket.remoteAddress,
      tls: socket.encrypted === true,
      peerCertificate: socket.encrypted ? socket.getPeerCertificate() : undefined,
      headers: forwarded,
    }).then((denial) => {
      if (denial) {
        res.writeHead(denial.status, denial.headers);
        return res.end(denial.body);
      }
      res.end(JSON.stringify({ identity: inboundIdentityOf(req), forwarded }));
    });
  });
  listener = createMeshListener({ store: serverStore, modeFor: () => 'PERMISSIVE', onConnection: handToServer(http) });
  port = await listen(listener.server);
});

afterAll(async () => {
  for (const store of stores) store.stop();
  await listener.close();
  tmp.cleanup();
});

function call(tls: object | undefined, headers: Record<string, string> = {}, path = '/api'): Promise<{ status?: number; body: string; headers?: Record<string, unknown>; error?: Error }> {
  return new Promise((resolve) => {
    const send = tls ? httpsRequest : httpRequest;
    const req = send({ host: '127.0.0.1', port, path, headers, agent: false, ...(tls ?? {}) }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('error', (error) => resolve({ body: '', error }));
    req.end();
  });
}

const basePolicy = (overrides: Partial<InboundPolicy> = {}): InboundPolicy => ({ mtlsMode: 'PERMISSIVE', portLevelMtls: {}, authorization: [], jwtRules: [], ...overrides });
const istioMutual = () => clientTls.clientContext(cluster({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/server'] }));

describe('inbound filter (PeerAuthentication, RequestAuthentication, AuthorizationPolicy)', () => {
  it('authorises by mTLS principal: allowed source gets through, others get 403 RBAC: access denied', async () => {
    inbound = basePolicy({ authorization: [{ name: 'shop/allow-client', action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }] }] });
    const ok = await call(istioMutual());
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).identity).toEqual({ sourcePrincipal: 'cluster.local/ns/shop/sa/client', connectionSecurityPolicy: 'mutual_tls' });
    const plaintext = await call(undefined);
    expect([plaintext.status, plaintext.body]).toEqual([403, 'RBAC: access denied']);
  });

  it('STRICT on the port refuses a plaintext request even if the listener let it in', async () => {
    inbound = basePolicy({ mtlsMode: 'PERMISSIVE', portLevelMtls: { [String(port)]: 'STRICT' } });
    expect((await call(undefined)).status).toBe(403);
    expect((await call(istioMutual())).status).toBe(200);
  });

  it('JWT: invalid ⇒ 401; valid ⇒ request principal usable by policy, token stripped, payload forwarded', async () => {
    inbound = basePolicy({
      jwtRules: [{ policy: 'shop/jwt', issuer: 'https://idp', audiences: [], jwks, fromHeaders: [], fromParams: [], fromCookies: [], forwardOriginalToken: false, outputPayloadToHeader: 'x-jwt-payload', outputClaimToHeaders: [], timeoutMs: 5000 }],
      authorization: [{ name: 'shop/require-jwt', action: 'ALLOW', rules: [{ from: [{ source: { requestPrincipals: ['https://idp/*'] } }] }] }],
    });
    const token = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'RS256', kid: 'k' }).setIssuer('https://idp').setExpirationTime('5m').sign(jwtKey);
    const ok = await call(istioMutual(), { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    const echoed = JSON.parse(ok.body);
    expect(echoed.identity.requestPrincipal).toBe('https://idp/bob');
    expect(echoed.forwarded.authorization).toBeUndefined();
    expect(echoed.forwarded['x-jwt-payload']).toBe(token.split('.')[1]);
    const invalid = await call(istioMutual(), { authorization: `Bearer ${token.slice(0, -4)}AAAA` });
    expect([invalid.status, invalid.body]).toEqual([401, 'Jwt verification fails']);
    expect(invalid.headers?.['www-authenticate']).toContain('invalid_token');
    const missing = await call(istioMutual());
    expect([missing.status, missing.body]).toEqual([403, 'RBAC: access denied']);
  });

  it('auto mTLS toward an istio endpoint verifies its service account; DISABLE and plain endpoints are plaintext', async () => {
    inbound = basePolicy();
    const endpoint = { address: '127.0.0.1', port, labels: {}, tlsMode: 'istio' as const, weight: 1, namespace: 'shop' };
    const good = clientTls.clientContext(cluster(), { ...endpoint, serviceAccount: 'server' });
    expect(JSON.parse((await call(good)).body).identity.connectionSecurityPolicy).toBe('mutual_tls');
    const wrong = clientTls.clientContext(cluster(), { ...endpoint, serviceAccount: 'impostor' });
    expect((await call(wrong)).error).toBeInstanceOf(SecureNamingError);
    expect(clientTls.clientContext(cluster(), { ...endpoint, tlsMode: 'disabled' })).toBeUndefined();
    expect(clientTls.clientContext(cluster({ mode: 'DISABLE', subjectAltNames: [] }), endpoint)).toBeUndefined();
  });
});
