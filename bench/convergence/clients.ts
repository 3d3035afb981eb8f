/**
 * A process full of simulated proxies for bench/convergence: each is a real discovery client on its
 * own HTTP/2 connection that reassembles every delta, checks the content hash and validates the
 * snapshot before it ACKs. Driven by the parent over IPC.
 */
import { startDiscoveryClient } from '../../src/discovery/client.js';
import type { DiscoveryClient } from '../../src/discovery/client.js';
import { SNAPSHOT_FORMAT } from '../../src/mesh/snapshot.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import { proxyIdentity } from './real-mesh.js';

export interface ClientsStart {
  url: string;
  first: number;
  count: number;
  namespaces: string[];
  servicesPerNamespace: number;
}

export type ClientsReport = { type: 'started' } | { type: 'counters'; snapshots: number; bytes: number; applied: number; rejected: number; cpuMs: number };

function validate(s: ProxySnapshot): string | null {
  if (s.format !== SNAPSHOT_FORMAT) return `format ${s.format}`;
  for (const list of ['routeConfigs', 'clusters', 'endpoints', 'listeners'] as const) if (!Array.isArray(s[list])) return `${list} is not a list`;
  const clusters = new Set(s.clusters.map((c) => c.name));
  for (const rc of s.routeConfigs)
    for (const vh of rc.virtualHosts)
      for (const r of vh.routes)
        if (r.action.kind === 'route') for (const d of r.action.destinations) if (!clusters.has(d.cluster)) return `route ${r.name}: unknown cluster ${d.cluster}`;
  return null;
}

const clients: DiscoveryClient[] = [];
let applied = 0;
let rejected = 0;

process.on('message', async (msg: { type: 'start'; start: ClientsStart } | { type: 'counters' } | { type: 'stop' }) => {
  if (msg.type === 'start') {
    const { url, first, count, namespaces, servicesPerNamespace } = msg.start;
    for (let i = first; i < first + count; i++) {
      clients.push(
        startDiscoveryClient({
          url,
          identity: proxyIdentity({ namespaces, servicesPerNamespace }, i),
          endpoint: { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 8080 },
          heartbeatMs: 10_000,
          backoff: { initialMs: 100, maxMs: 2000 },
          apply: (s) => {
            const problem = validate(s);
            if (problem) rejected++;
            else applied++;
            return problem ? { ok: false, error: problem } : { ok: true };
          },
        }),
      );
    }
    process.send?.({ type: 'started' } satisfies ClientsReport);
  } else if (msg.type === 'counters') {
    let snapshots = 0;
    let bytes = 0;
    for (const c of clients) {
      snapshots += c.counters.snapshots;
      bytes += c.counters.bytesReceived;
    }
    const cpu = process.cpuUsage();
    process.send?.({ type: 'counters', snapshots, bytes, applied, rejected, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies ClientsReport);
  } else if (msg.type === 'stop') {
    await Promise.all(clients.map((c) => c.stop()));
    process.exit(0);
  }
});
