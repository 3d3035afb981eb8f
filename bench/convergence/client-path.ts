/**
 * The proxy's discovery client path alone, per delta, in one process (no sockets): decode the wire
 * message, reassemble, verify the content hash, run the proxy's validation gate
 * (validateProxySnapshot). Uses the operator's real renderer and wire encoding (the same deltas the
 * convergence bench pushes), so it shows CPU per change per proxy without the noise of 1,000 streams.
 *
 *   node --import tsx bench/convergence/client-path.ts [--quick] [--proxies N] [--rounds N]
 *   (CLIENT_PATH_CPU_PROF=file: a CPU profile of the delta loop alone)
 */
import { writeFileSync } from 'node:fs';
import { reassemble } from '../../src/discovery/client.js';
import type { HeldState } from '../../src/discovery/client.js';
import { PROTOCOL_VERSION, decodeOperatorMessage } from '../../src/discovery/protocol.js';
import { encodeDelta, splitSnapshot } from '../../src/discovery/resources.js';
import type { ProxySnapshot } from '../../src/mesh/snapshot.js';
import type { WorkloadEndpoint } from '../../src/render/types.js';
import { validateProxySnapshot } from '../../src/proxy/snapshot-validate.js';
import { startCpuProfile } from './profile.js';
import { BenchMesh, proxyIdentity } from './real-mesh.js';

const NAMESPACES = Array.from({ length: 10 }, (_, i) => `ns-${i}`);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function wireLine(base: ProxySnapshot | null, next: ProxySnapshot): string {
  const delta = encodeDelta(base ? splitSnapshot(base, 2).groups : null, splitSnapshot(next, 2).groups);
  return `{"v":${PROTOCOL_VERSION},"type":"snapshot","version":${JSON.stringify(next.version)},"base":${JSON.stringify(base?.version ?? null)},"resources":${delta.resources},"removed":${JSON.stringify(delta.removed)}}`;
}

interface Stage {
  decode: number;
  reassemble: number;
  validate: number;
}

/** CPU time of this thread in ms (less sensitive to a loaded machine than wall time). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function clientStep(held: HeldState | null, line: string, t: Stage): HeldState {
  let t0 = cpuMs();
  const msg = decodeOperatorMessage(line);
  if (msg.type !== 'snapshot') throw new Error('not a snapshot');
  let t1 = cpuMs();
  t.decode += t1 - t0;
  const result = reassemble(held, msg);
  if (!result.ok) throw new Error(result.reason);
  t0 = cpuMs();
  t.reassemble += t0 - t1;
  const checked = validateProxySnapshot(result.snapshot);
  if (!checked.ok) throw new Error(checked.errors.join('; '));
  t1 = cpuMs();
  t.validate += t1 - t0;
  return result.state;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const proxies = Number(arg('--proxies') ?? (quick ? 200 : 1000));
  const rounds = Number(arg('--rounds') ?? (quick ? 3 : 6));
  const mesh = new BenchMesh({ namespaces: NAMESPACES, servicesPerNamespace: 20 });
  const endpoints: WorkloadEndpoint[] = Array.from({ length: proxies }, (_, i) => {
    const id = proxyIdentity(mesh.shape, i);
    return { service: id.service as string, namespace: id.namespace, workload: id.workload, labels: id.labels, address: `10.0.${i >> 8}.${i & 255}`, port: 8080, serviceAccount: id.serviceAccount, tlsMode: 'istio', proxyId: id.id };
  });
  const ids = Array.from({ length: proxies }, (_, i) => proxyIdentity(mesh.shape, i));
  let rendered = ids.map((id) => mesh.render(id, endpoints));
  const full: Stage = { decode: 0, reassemble: 0, validate: 0 };
  const fullBytes = rendered.reduce((n, s) => n + wireLine(null, s).length, 0);
  const fullLines = rendered.map((s) => wireLine(null, s));
  const t0 = cpuMs();
  let held = fullLines.map((line) => clientStep(null, line, full));
  const fullMs = cpuMs() - t0;
  const delta: Stage = { decode: 0, reassemble: 0, validate: 0 };
  let deltaBytes = 0;
  let deltas = 0;
  // Every round's wire messages first, so the client loop below runs alone (and can be profiled alone).
  const roundsOfLines: string[][] = [];
  for (let round = 0; round < rounds; round++) {
    mesh.setTimeouts(NAMESPACES.map((namespace) => ({ namespace, name: 'svc-0' })), `${2000 + round}ms`);
    const next = ids.map((id) => mesh.render(id, endpoints));
    const lines = next.map((s, i) => wireLine(rendered[i], s));
    deltaBytes += lines.reduce((n, l) => n + l.length, 0);
    roundsOfLines.push(lines);
    rendered = next;
  }
  const stopProfile = process.env.CLIENT_PATH_CPU_PROF ? await startCpuProfile() : null;
  for (const lines of roundsOfLines) {
    held = lines.map((line, i) => clientStep(held[i], line, delta));
    deltas += lines.length;
  }
  if (stopProfile) writeFileSync(process.env.CLIENT_PATH_CPU_PROF as string, JSON.stringify(await stopProfile()));
  const us = (ms: number, n: number) => ((ms * 1000) / n).toFixed(0);
  const rows = [
    ['full snapshot', String(proxies), us(full.decode, proxies), us(full.reassemble, proxies), us(full.validate, proxies), us(fullMs, proxies), (fullBytes / proxies).toFixed(0)],
    ['mesh-wide delta', String(deltas), us(delta.decode, deltas), us(delta.reassemble, deltas), us(delta.validate, deltas), us(delta.decode + delta.reassemble + delta.validate, deltas), (deltaBytes / deltas).toFixed(0)],
  ];
  const header = ['message', 'count', 'decode µs', 'reassemble+hash µs', 'validate µs', 'total µs', 'bytes'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  console.log('Discovery client path, CPU µs per message (decode, reassemble + content hash, the proxy validation gate), one process, no sockets:');
  for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padStart(widths[i])).join('  '));
  console.log(
    JSON.stringify({
      bench: 'convergence-client-path',
      proxies,
      fullUs: { decode: Math.round((full.decode * 1000) / proxies), reassemble: Math.round((full.reassemble * 1000) / proxies), validate: Math.round((full.validate * 1000) / proxies) },
      deltaUs: { decode: Math.round((delta.decode * 1000) / deltas), reassemble: Math.round((delta.reassemble * 1000) / deltas), validate: Math.round((delta.validate * 1000) / deltas) },
      deltaBytes: Math.round(deltaBytes / deltas),
    }),
  );
}

await main();
