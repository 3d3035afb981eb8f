import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import type { ProxyIdentity } from '../mesh/snapshot.js';
import { startMeshAgent, type MeshAgent } from '../proxy/agent.js';
import { startBookinfoApp, type BookinfoService } from './bookinfo-app.js';

/** The bookinfo workloads of one demo cluster, each an app behind its own sidecar. */
export const BOOKINFO_WORKLOADS: ReadonlyArray<{ service: BookinfoService; version: string }> = [
  { service: 'productpage', version: 'v1' },
  { service: 'details', version: 'v1' },
  { service: 'reviews', version: 'v1' },
  { service: 'reviews', version: 'v2' },
  { service: 'reviews', version: 'v3' },
  { service: 'ratings', version: 'v1' },
];

export const SERVICE_PORT = 9080;
export const SIDECAR_OUTBOUND_PORT = 15001;
export const GATEWAY_PORT = 8080;
/** Each proxy's admin API (/ready, /server_info, /config_dump, /clusters, /stats/prometheus) on its pod address. */
export const ADMIN_PORT = 15000;

/**
 * Every workload gets its own loopback address (127.<block>.<cluster>.<n>), as a pod gets its own
 * IP: sidecars then listen on the service port itself and no port is privileged. Linux routes all
 * of 127.0.0.0/8 to loopback. The block keeps concurrent demos (or tests) apart.
 */
export const DEFAULT_ADDRESS_BLOCK = 77;
export function podAddress(clusterIndex: number, workloadIndex: number, block = DEFAULT_ADDRESS_BLOCK): string {
  return `127.${block}.${clusterIndex}.${workloadIndex + 1}`;
}
export function gatewayAddress(clusterIndex: number, block = DEFAULT_ADDRESS_BLOCK): string {
  return `127.${block}.${clusterIndex}.100`;
}

/**
 * Workload certificates from the operator's mesh CA: the join token (with its root pin) goes over
 * TLS only; `bootstrapUrl` may be the operator API's /v1/bootstrap, which points to the TLS
 * endpoint. With an https discovery URL (operator with discoveryMtls), every agent then holds its
 * discovery stream over mTLS with its workload certificate.
 */
export interface DemoSecurity {
  bootstrapUrl: string;
  token: string;
  trustDomain: string;
}

/** Reads a join token file, waiting for the operator to create it (it does once it applied the Fleet). */
export async function readJoinTokenFile(path: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const token = (await readFile(path, 'utf8')).trim();
      if (token) return token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`--token-file ${path}: ${(err as Error).message}`);
    }
    if (Date.now() > deadline) throw new Error(`--token-file ${path}: no join token after ${Math.round(timeoutMs / 1000)}s (is the operator's mesh CA on?)`);
    await delay(200);
  }
}

export interface DemoCluster {
  gatewayUrl: string;
  agents: MeshAgent[];
  stop(): Promise<void>;
}

/** Starts one demo cluster: bookinfo apps, their sidecars and an ingress gateway, all joined to the operator's discovery. */
export async function startDemoCluster(opts: { cluster: string; index: number; addressBlock?: number; discoveryUrl: string; stateDir: string; logger: Logger; security?: DemoSecurity }): Promise<DemoCluster> {
  const { cluster, index, discoveryUrl, logger } = opts;
  const security = opts.security ? { ...opts.security, cluster } : undefined;
  const agents: MeshAgent[] = [];
  // Access logs (on in mesh 1.16.1) go to a file per cluster, not to the process's log stream.
  const accessLogDestination = pino.destination({ dest: join(opts.stateDir, 'access.log'), mkdir: true, sync: false });
  const apps: Array<{ close(): Promise<void> }> = [];
  for (const [i, w] of BOOKINFO_WORKLOADS.entries()) {
    const address = podAddress(index, i, opts.addressBlock);
    const workload = `${w.service}-${w.version}`;
    const labels = { app: w.service, version: w.version };
    const app = await startBookinfoApp({ service: w.service, version: w.version, namespace: 'bookinfo', outbound: { host: address, port: SIDECAR_OUTBOUND_PORT } });
    apps.push(app);
    const identity: ProxyIdentity = {
      id: `${cluster}/bookinfo/${workload}/0`,
      cluster,
      namespace: 'bookinfo',
      workload,
      labels,
      service: w.service,
      serviceAccount: `bookinfo-${w.service}`,
      mode: 'sidecar',
    };
    agents.push(
      await startMeshAgent({
        proxy: {
          mode: 'sidecar',
          bindAddress: address,
          outboundPort: SIDECAR_OUTBOUND_PORT,
          inboundPort: SERVICE_PORT,
          adminPort: ADMIN_PORT,
          adminAddress: address,
          appPort: app.port,
          appHost: '127.0.0.1',
          stateDir: join(opts.stateDir, workload),
          accessLogDestination,
          logger: logger.child({ proxy: identity.id }),
        },
        discovery: { url: discoveryUrl, identity, endpoint: { address, port: SERVICE_PORT, labels }, heartbeatMs: 1000 },
        security,
        logger: logger.child({ proxy: identity.id }),
      }),
    );
  }
  const gatewayIdentity: ProxyIdentity = {
    id: `${cluster}/istio-system/istio-ingressgateway/0`,
    cluster,
    namespace: 'istio-system',
    workload: 'istio-ingressgateway',
    labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' },
    serviceAccount: 'istio-ingressgateway-service-account',
    mode: 'gateway',
  };
  const gateway = await startMeshAgent({
    proxy: { mode: 'gateway', bindAddress: gatewayAddress(index, opts.addressBlock), adminPort: ADMIN_PORT, adminAddress: gatewayAddress(index, opts.addressBlock), stateDir: join(opts.stateDir, 'istio-ingressgateway'), accessLogDestination, logger: logger.child({ proxy: gatewayIdentity.id }) },
    discovery: { url: discoveryUrl, identity: gatewayIdentity, heartbeatMs: 1000 },
    security,
    logger: logger.child({ proxy: gatewayIdentity.id }),
  });
  agents.push(gateway);
  return {
    gatewayUrl: `http://${gatewayAddress(index, opts.addressBlock)}:${GATEWAY_PORT}`,
    agents,
    async stop() {
      await Promise.all(agents.map((a) => a.stop({ drainMs: 500 })));
      await Promise.all(apps.map((a) => a.close()));
      accessLogDestination.flushSync();
    },
  };
}
