/**
 * A process full of simulated proxies for bench/convergence: each is a real discovery client on its
 * own HTTP/2 connection that reassembles every delta, checks the content hash and runs the proxy's
 * validation gate (src/proxy/snapshot-validate) on the snapshot before it ACKs. Driven by the parent over IPC.
 */
import { writeFileSync } from 'node:fs';
import { startDiscoveryClient } from '../../src/discovery/client.js';
import type { DiscoveryClient } from '../../src/discovery/client.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import { validateProxySnapshot } from '../../src/proxy/snapshot-validate.js';
import { startCpuProfile } from './profile.js';
import { proxyIdentity } from './real-mesh.js';

export interface ClientsStart {
  url: string;
  first: number;
  count: number;
  namespaces: string[];
  servicesPerNamespace: number;
}

export type ClientsReport =
  | { type: 'started' }
  | { type: 'counters'; snapshots: number; bytes: number; applied: number; rejected: number; cpuMs: number }
  | { type: 'profiling' }
  | { type: 'profiled' };

export type ClientsCommand = { type: 'start'; start: ClientsStart } | { type: 'counters' } | { type: 'profile-start' } | { type: 'profile-stop'; file: string } | { type: 'stop' };

/**
 * What the proxy's apply does before it compiles a snapshot (src/proxy/server.ts applySnapshot):
 * the validation gate, then the mode check. The route tables it compiles next are the proxy's data
 * plane, not discovery, and are left out.
 */
function validate(s: ProxySnapshot): string | null {
  const checked = validateProxySnapshot(s);
  if (!checked.ok) return checked.errors.join('; ');
  if (checked.snapshot.proxy.mode !== 'sidecar') return `proxy.mode: snapshot is for a ${checked.snapshot.proxy.mode}, this proxy runs as sidecar`;
  return null;
}

const clients: DiscoveryClient[] = [];
let applied = 0;
let rejected = 0;

let stopProfile: (() => Promise<object>) | null = null;

process.on('message', async (msg: ClientsCommand) => {
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
  } else if (msg.type === 'profile-start') {
    stopProfile = await startCpuProfile();
    process.send?.({ type: 'profiling' } satisfies ClientsReport);
  } else if (msg.type === 'profile-stop') {
    if (stopProfile) writeFileSync(msg.file, JSON.stringify(await stopProfile()));
    stopProfile = null;
    process.send?.({ type: 'profiled' } satisfies ClientsReport);
  } else if (msg.type === 'stop') {
    await Promise.all(clients.map((c) => c.stop()));
    process.exit(0);
  }
});
