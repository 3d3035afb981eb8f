import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ProxyIdentity } from '../../../src/mesh/snapshot.js';
import { startProxySecurity, type MeshSecurityOptions, type ProxySecurity } from '../../../src/proxy/mesh-security.js';
import { MeshCaService } from '../../../src/security/index.js';

export { until } from '../../security/helpers/wait.js';

/**
 * The operator's side of mesh identity as the security-integration tests run it: a MeshCaService
 * (CA in a temp state dir, TLS bootstrap endpoint) and one cluster's join token, which carries the
 * root's pin, so proxies bootstrap over TLS exactly as in production (never in plaintext).
 */
export interface TestMeshCa {
  dir: string;
  service: MeshCaService;
  /** The cluster's join token (`<secret>.sha256:<root pin>`). */
  token: string;
  /** What a proxy of the cluster is started with. */
  options: MeshSecurityOptions;
  /** A proxy's workload identity (bootstrapped now, renewed at half-life); stopped by close(). */
  security(identity: ProxyIdentity, logger?: Logger): Promise<ProxySecurity>;
  /** Stops every ProxySecurity, closes the bootstrap endpoint and removes the state dir. */
  close(): Promise<void>;
}

export async function startTestMeshCa(opts: { cluster: string; trustDomain?: string; ttlMs?: number; logger?: Logger }): Promise<TestMeshCa> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-sec-int-'));
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const service = await MeshCaService.start({ trustDomain, caDir: join(dir, 'operator'), tokenDir: join(dir, 'operator', 'tokens'), logger: opts.logger });
  const token = await service.tokens.tokenFor(opts.cluster);
  const options: MeshSecurityOptions = { bootstrapUrl: service.bootstrapUrl, cluster: opts.cluster, token, trustDomain, ...(opts.ttlMs ? { ttlMs: opts.ttlMs } : {}) };
  const started: ProxySecurity[] = [];
  return {
    dir,
    service,
    token,
    options,
    async security(identity, logger) {
      const security = await startProxySecurity(options, identity, logger);
      started.push(security);
      return security;
    },
    async close() {
      for (const security of started.splice(0)) security.stop();
      await service.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A sidecar identity in `cluster` (id `<cluster>/<namespace>/<workload>/0`). */
export function sidecarIdentity(cluster: string, namespace: string, workload: string, serviceAccount: string): ProxyIdentity {
  return { id: `${cluster}/${namespace}/${workload}/0`, cluster, namespace, workload, labels: { app: workload }, service: workload, serviceAccount, mode: 'sidecar' };
}

/** One HTTP/1.1 request on a fresh connection (no keep-alive pool between tests). */
export function httpGet(port: number, host: string, path = '/', method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
