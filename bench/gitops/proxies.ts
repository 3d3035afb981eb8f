/**
 * A process of simulated sidecars for bench/gitops: each is a real discovery client on its own
 * HTTP/2 connection that reassembles every delta, checks its content hash and runs the proxy's own
 * validation gate (validateProxySnapshot: JSON schema + structural checks) before it ACKs. They run
 * in child processes, as real proxies run outside the operator: their CPU is not the operator's.
 */
import { startDiscoveryClient, type DiscoveryClient } from '../../src/discovery/client.js';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { validateProxySnapshot } from '../../src/proxy/snapshot-validate.js';

export interface ProxiesStart {
  url: string;
  cluster: string;
  namespace: string;
  /** Proxies first … first + count - 1 of the fleet run in this process. */
  first: number;
  count: number;
}

export type ProxiesReport = { type: 'started' } | { type: 'counters'; applied: number; rejected: number; cpuMs: number; lastError?: string };

/** The bookinfo workloads, round-robin: every sidecar sees every service, so a route change reaches all. */
const WORKLOADS = [
  { app: 'productpage', version: 'v1' },
  { app: 'details', version: 'v1' },
  { app: 'reviews', version: 'v1' },
  { app: 'reviews', version: 'v2' },
  { app: 'reviews', version: 'v3' },
  { app: 'ratings', version: 'v1' },
];

export function benchIdentity(cluster: string, namespace: string, i: number): ProxyIdentity {
  const w = WORKLOADS[i % WORKLOADS.length]!;
  const workload = `${w.app}-${w.version}`;
  return {
    id: `${cluster}/${namespace}/${workload}/${i}`,
    cluster,
    namespace,
    workload,
    labels: { app: w.app, version: w.version },
    service: w.app,
    serviceAccount: `bookinfo-${w.app}`,
    mode: 'sidecar',
  };
}

const clients: DiscoveryClient[] = [];
let applied = 0;
let rejected = 0;
let lastError: string | undefined;

process.on('message', async (msg: { type: 'start'; start: ProxiesStart } | { type: 'counters' } | { type: 'stop' }) => {
  if (msg.type === 'start') {
    const { url, cluster, namespace, first, count } = msg.start;
    for (let i = first; i < first + count; i++) {
      const identity = benchIdentity(cluster, namespace, i);
      clients.push(
        startDiscoveryClient({
          url,
          identity,
          endpoint: { address: `10.1.${(i >> 8) & 255}.${i & 255}`, port: 9080, labels: identity.labels },
          heartbeatMs: 60_000,
          backoff: { initialMs: 100, maxMs: 2000 },
          apply: (snapshot) => {
            const check = validateProxySnapshot(snapshot);
            if (check.ok) {
              applied++;
              return { ok: true };
            }
            rejected++;
            lastError = check.errors.slice(0, 3).join('; ');
            return { ok: false, error: lastError };
          },
        }),
      );
    }
    process.send?.({ type: 'started' } satisfies ProxiesReport);
  } else if (msg.type === 'counters') {
    const cpu = process.cpuUsage();
    process.send?.({ type: 'counters', applied, rejected, cpuMs: (cpu.user + cpu.system) / 1000, lastError } satisfies ProxiesReport);
  } else if (msg.type === 'stop') {
    await Promise.all(clients.map((c) => c.stop()));
    process.exit(0);
  }
});

// The bench died (or ended without a stop): do not outlive it.
process.on('disconnect', () => process.exit(0));
