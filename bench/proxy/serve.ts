/**
 * Child-process entry points for the proxy bench: each prints one JSON line `{"port": N}` once
 * listening, then serves until killed.
 *   upstream                      a small keep-alive HTTP server answering "ok"
 *   trellis <snapshot.json>       the Trellis proxy (sidecar outbound) watching that file, with
 *                                 single-threaded GC pauses (TRELLIS_BENCH_GC=parallel: V8's default)
 *   http-proxy <upstreamPort>     node http-proxy with a keep-alive agent
 *
 * With TRELLIS_BENCH_DIAG=1 a process also records its event-loop delay and GC pauses, and on
 * SIGUSR2 prints them (and its CPU time) since the last SIGUSR2 as one JSON line on stderr.
 * TRELLIS_BENCH_ALLOC_PROFILE=FILE adds a sampling allocation profile (objects a scavenge
 * collected included, every 512 bytes), written to FILE.N.heapprofile on each SIGUSR2.
 */
import { createServer, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';

const [kind, arg] = process.argv.slice(2);
process.on('SIGINT', () => process.exit(0));
if (process.env.TRELLIS_BENCH_DIAG) await recordDiagnostics();

/** Event-loop delay, GC pauses by kind and CPU time, printed and reset on SIGUSR2 (bench diagnostics). */
async function recordDiagnostics(): Promise<void> {
  const { monitorEventLoopDelay, PerformanceObserver, constants } = await import('node:perf_hooks');
  const kinds: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
  };
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let gc: Record<string, { count: number; totalMs: number; maxMs: number }> = {};
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = kinds[((e as unknown as { detail: { kind: number } }).detail).kind] ?? 'other';
      const g = (gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
      g.count++;
      g.totalMs += e.duration;
      g.maxMs = Math.max(g.maxMs, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  let cpu = process.cpuUsage();
  const allocFile = process.env.TRELLIS_BENCH_ALLOC_PROFILE;
  let allocSeq = 0;
  let session: import('node:inspector').Session | undefined;
  if (allocFile) {
    const { Session } = await import('node:inspector');
    session = new Session();
    session.connect();
    const sampling = { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
    session.post('HeapProfiler.startSampling', sampling);
    const { writeFileSync } = await import('node:fs');
    process.on('SIGUSR2', () => {
      session!.post('HeapProfiler.stopSampling', (err, r) => {
        if (!err) writeFileSync(`${allocFile}.${allocSeq++}.heapprofile`, JSON.stringify(r.profile));
        session!.post('HeapProfiler.startSampling', sampling);
      });
    });
  }
  process.on('SIGUSR2', () => {
    const used = process.cpuUsage(cpu);
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    process.stderr.write(
      `${JSON.stringify({
        pid: process.pid,
        cpuMs: Math.round((used.user + used.system) / 1000),
        loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), p999: ms(delay.percentile(99.9)), max: ms(delay.max) },
        gc: Object.fromEntries(Object.entries(gc).map(([k, v]) => [k, { count: v.count, totalMs: Math.round(v.totalMs * 100) / 100, maxMs: Math.round(v.maxMs * 100) / 100 }])),
      })}\n`,
    );
    delay.reset();
    gc = {};
    cpu = process.cpuUsage();
  });
}

function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

if (kind === 'upstream') {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
} else if (kind === 'trellis') {
  const { startProxy, watchConfigFile } = await import('../../src/proxy/index.js');
  // Single-threaded GC pauses, as recommended for `trellis proxy` (src/proxy/gc-tuning.ts); TRELLIS_BENCH_GC=parallel compares V8's default.
  if (process.env.TRELLIS_BENCH_GC !== 'parallel') (await import('../../src/proxy/index.js')).useSingleThreadedGc();
  const proxy = await startProxy({ mode: 'sidecar', outboundPort: 0, adminPort: 0, bindAddress: '127.0.0.1' });
  const w = watchConfigFile(arg, (v, s) => proxy.applySnapshot(v, s), { pollMs: 100 });
  const r = await w.reload();
  if (!r?.ok) throw new Error(`snapshot refused: ${JSON.stringify(r)}`);
  process.stdout.write(`${JSON.stringify({ port: proxy.ports.outbound, admin: proxy.ports.admin })}\n`);
} else if (kind === 'http-proxy') {
  const { default: httpProxy } = await import('http-proxy');
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${arg}`, agent });
  proxy.on('error', (_e, _req, res) => {
    const r = res as import('node:http').ServerResponse;
    if (!r.headersSent) r.writeHead(502);
    r.end();
  });
  const server = createServer((req, res) => proxy.web(req, res));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
} else {
  throw new Error(`unknown kind ${kind}`);
}
