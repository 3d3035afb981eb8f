/**
 * Per-request telemetry cost: Trellis's IstioMetrics (record() and the series() fast path) against
 * prom-client doing the same Istio counter + 3 histograms, plus trace propagation, x-request-id and
 * access logging. Run: node --import tsx bench/telemetry/main.ts [--quick]
 */
import os from 'node:os';
import { pino } from 'pino';
import client from 'prom-client';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import {
  ISTIO_BYTES_BUCKETS,
  ISTIO_DURATION_BUCKETS_MS,
  IstioMetrics,
  createAccessLogger,
  ensureRequestId,
  propagateTrace,
  type AccessLogEntry,
  type RequestRecord,
  type SeriesLabels,
} from '../../src/proxy/telemetry/index.js';

const quick = process.argv.includes('--quick');
const N = quick ? 200_000 : 2_000_000;
const ROUNDS = quick ? 2 : 5;
// prom-client is two orders of magnitude slower per request; fewer iterations give the same precision.
const N_PROM = N / 10;

const proxy: ProxyIdentity = {
  id: 'east/default/productpage-v1/p-1',
  cluster: 'east',
  namespace: 'default',
  workload: 'productpage-v1',
  labels: { app: 'productpage', version: 'v1' },
  serviceAccount: 'bookinfo-productpage',
  mode: 'sidecar',
};

// 12 destinations × a realistic outcome mix (mostly 200, some 404/503 with flags).
const DESTS: SeriesLabels[] = [];
for (const svc of ['reviews', 'ratings', 'details', 'productpage']) {
  for (const v of ['v1', 'v2', 'v3']) {
    DESTS.push({
      reporter: 'source',
      destinationService: `${svc}.default.svc.cluster.local`,
      destinationWorkload: `${svc}-${v}`,
      destinationNamespace: 'default',
      destinationApp: svc,
      destinationVersion: v,
      destinationPrincipal: `spiffe://cluster.local/ns/default/sa/bookinfo-${svc}`,
      requestProtocol: 'http',
      connectionSecurityPolicy: 'unknown',
    });
  }
}
const OUTCOMES: Array<[number, string]> = [
  [200, '-'], [200, '-'], [200, '-'], [200, '-'], [200, '-'], [200, '-'], [200, '-'], [404, '-'], [503, 'UF'], [503, 'UO'],
];
const SAMPLES = 4096; // power of two for a cheap index mask
const durations = Array.from({ length: SAMPLES }, (_, i) => ((i * 7919) % 1000) / 10 + 0.2);
const reqBytes = Array.from({ length: SAMPLES }, (_, i) => (i * 31) % 5000);
const respBytes = Array.from({ length: SAMPLES }, (_, i) => (i * 131) % 200_000);
// One object literal shape, as the request path builds it (a spread here would give V8 several
// maps and measure megamorphic property reads instead of telemetry).
function makeRecord(d: SeriesLabels, code: number, flags: string, i: number): RequestRecord {
  return {
    reporter: d.reporter,
    destinationService: d.destinationService,
    destinationWorkload: d.destinationWorkload,
    destinationNamespace: d.destinationNamespace,
    destinationApp: d.destinationApp,
    destinationVersion: d.destinationVersion,
    destinationPrincipal: d.destinationPrincipal,
    requestProtocol: d.requestProtocol,
    connectionSecurityPolicy: d.connectionSecurityPolicy,
    responseCode: code,
    responseFlags: flags,
    durationMs: durations[i],
    requestBytes: reqBytes[i],
    responseBytes: respBytes[i],
  };
}
const records: RequestRecord[] = Array.from({ length: SAMPLES }, (_, i) => {
  const [code, flags] = OUTCOMES[i % OUTCOMES.length];
  return makeRecord(DESTS[i % DESTS.length], code, flags, i);
});

/**
 * Best of ROUNDS, in ns per operation of this thread's CPU time (process.cpuUsage), not wall time:
 * the machine is shared, and wall time would mostly measure the other processes.
 */
function time(label: string, n: number, fn: (n: number) => void): { label: string; nsPerOp: number; wallNsPerOp: number } {
  fn(Math.min(n, 100_000)); // warm up
  let best = Infinity;
  let bestWall = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn(n);
    const wall = Number(process.hrtime.bigint() - t0) / n;
    const c = process.cpuUsage(c0);
    const cpu = ((c.user + c.system) * 1000) / n;
    if (cpu < best) best = cpu;
    if (wall < bestWall) bestWall = wall;
  }
  return { label, nsPerOp: best, wallNsPerOp: bestWall };
}

const results: Array<{ label: string; nsPerOp: number; wallNsPerOp: number }> = [];

// ---- Trellis: record()
{
  const m = new IstioMetrics({ proxy, meshVersion: '1.22.0' });
  results.push(time('trellis record(r)', N, (n) => {
    for (let i = 0; i < n; i++) m.record(records[i & (SAMPLES - 1)]);
  }));
}

// ---- Trellis: series handle, resolved once per destination
{
  const m = new IstioMetrics({ proxy, meshVersion: '1.22.0' });
  const handles = DESTS.map((d) => m.series(d));
  results.push(time('trellis series().observe()', N, (n) => {
    for (let i = 0; i < n; i++) {
      const k = i & (SAMPLES - 1);
      const r = records[k];
      handles[k % handles.length].observe(r.responseCode, r.responseFlags, r.durationMs, r.requestBytes, r.responseBytes);
    }
  }));
}

// ---- prom-client: the same four metrics with Istio's label names
const LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version',
  'source_canonical_service', 'source_canonical_revision', 'source_cluster', 'destination_workload',
  'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace', 'destination_canonical_service',
  'destination_canonical_revision', 'destination_cluster', 'request_protocol', 'response_flags',
  'connection_security_policy', 'response_code', 'grpc_response_status',
] as const;
type PromLabels = Record<(typeof LABELS)[number], string>;

function promLabels(r: RequestRecord): PromLabels {
  const svc = r.destinationService.split('.');
  return {
    reporter: r.reporter, source_workload: proxy.workload, source_workload_namespace: proxy.namespace,
    source_principal: 'unknown', source_app: 'productpage', source_version: 'v1', source_canonical_service: 'productpage',
    source_canonical_revision: 'v1', source_cluster: 'east', destination_workload: r.destinationWorkload ?? 'unknown',
    destination_workload_namespace: r.destinationNamespace ?? 'unknown', destination_principal: r.destinationPrincipal ?? 'unknown',
    destination_app: r.destinationApp ?? 'unknown', destination_version: r.destinationVersion ?? 'unknown',
    destination_service: r.destinationService, destination_service_name: svc[0], destination_service_namespace: svc[1],
    destination_canonical_service: r.destinationApp ?? 'unknown', destination_canonical_revision: r.destinationVersion ?? 'latest',
    destination_cluster: 'unknown', request_protocol: r.requestProtocol, response_flags: r.responseFlags,
    connection_security_policy: r.connectionSecurityPolicy, response_code: String(r.responseCode), grpc_response_status: '',
  };
}

function promMetrics(): {
  registry: client.Registry;
  total: client.Counter<string>;
  dur: client.Histogram<string>;
  req: client.Histogram<string>;
  resp: client.Histogram<string>;
} {
  const registry = new client.Registry();
  const labelNames = [...LABELS];
  return {
    registry,
    total: new client.Counter({ name: 'istio_requests_total', help: 'x', labelNames, registers: [registry] }),
    dur: new client.Histogram({ name: 'istio_request_duration_milliseconds', help: 'x', labelNames, buckets: [...ISTIO_DURATION_BUCKETS_MS], registers: [registry] }),
    req: new client.Histogram({ name: 'istio_request_bytes', help: 'x', labelNames, buckets: [...ISTIO_BYTES_BUCKETS], registers: [registry] }),
    resp: new client.Histogram({ name: 'istio_response_bytes', help: 'x', labelNames, buckets: [...ISTIO_BYTES_BUCKETS], registers: [registry] }),
  };
}

// prom-client as it is usually called: a label object per request.
{
  const p = promMetrics();
  results.push(time('prom-client inc/observe(labels)', N_PROM, (n) => {
    for (let i = 0; i < n; i++) {
      const r = records[i & (SAMPLES - 1)];
      const l = promLabels(r);
      p.total.inc(l);
      p.dur.observe(l, r.durationMs);
      p.req.observe(l, r.requestBytes);
      p.resp.observe(l, r.responseBytes);
    }
  }));
}

// prom-client at its best: label objects built once per (destination, outcome), children reused.
{
  const p = promMetrics();
  const children = records.map((r) => {
    const l = promLabels(r);
    return { total: p.total.labels(l), dur: p.dur.labels(l), req: p.req.labels(l), resp: p.resp.labels(l) };
  });
  results.push(time('prom-client cached children', N_PROM, (n) => {
    for (let i = 0; i < n; i++) {
      const k = i & (SAMPLES - 1);
      const c = children[k];
      const r = records[k];
      c.total.inc();
      c.dur.observe(r.durationMs);
      c.req.observe(r.requestBytes);
      c.resp.observe(r.responseBytes);
    }
  }));
}

// ---- the rest of the per-request telemetry
const NT = Math.max(N / 10, 50_000);
results.push(time('propagateTrace (traceparent in)', NT, (n) => {
  for (let i = 0; i < n; i++) propagateTrace({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
}));
results.push(time('propagateTrace (none in)', NT, (n) => {
  for (let i = 0; i < n; i++) propagateTrace({}, { samplingPercent: 1 });
}));
results.push(time('ensureRequestId (generate)', NT, (n) => {
  for (let i = 0; i < n; i++) ensureRequestId({});
}));
{
  // The production sink is pino's asynchronous sonic-boom destination; /dev/null keeps the disk out.
  const devNull = pino.destination({ dest: '/dev/null', sync: false });
  await new Promise((resolve) => devNull.once('ready', resolve));
  const logger = createAccessLogger({ enabled: true, encoding: 'JSON', destination: devNull });
  const text = createAccessLogger({ enabled: true, encoding: 'TEXT', destination: devNull });
  const disabled = createAccessLogger({ enabled: false, encoding: 'JSON' });
  const e: AccessLogEntry = {
    start_time: '2026-11-22T20:00:00.123Z', method: 'GET', path: '/reviews/0', protocol: 'HTTP/1.1', response_code: 200,
    response_flags: '-', bytes_received: 0, bytes_sent: 295, duration: 4, upstream_host: '10.1.0.7:9080',
    upstream_cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', x_forwarded_for: null, user_agent: 'curl/8.0',
    request_id: '9c5a2b8e-3d1f-4a6b-8a0e-1f2b3c4d5e6f', authority: 'reviews:9080', route_name: 'default', trace_id: null,
  };
  results.push(time('access log JSON (sonic-boom /dev/null)', NT, (n) => {
    for (let i = 0; i < n; i++) logger.log(e);
  }));
  results.push(time('access log TEXT (sonic-boom /dev/null)', NT, (n) => {
    for (let i = 0; i < n; i++) text.log(e);
  }));
  results.push(time('access log disabled', N, (n) => {
    for (let i = 0; i < n; i++) if (disabled.enabled) disabled.log(e);
  }));
}

// ---- scrape cost
let renderMs = { trellis: 0, promClient: 0, series: 0 };
{
  const m = new IstioMetrics({ proxy, meshVersion: '1.22.0' });
  for (const r of records) m.record(r);
  const p = promMetrics();
  for (const r of records) {
    const l = promLabels(r);
    p.total.inc(l); p.dur.observe(l, r.durationMs); p.req.observe(l, r.requestBytes); p.resp.observe(l, r.responseBytes);
  }
  const reps = quick ? 20 : 100;
  m.renderPrometheus();
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) m.renderPrometheus();
  const trellisMs = Number(process.hrtime.bigint() - t0) / reps / 1e6;
  await p.registry.metrics();
  t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) await p.registry.metrics();
  const promMs = Number(process.hrtime.bigint() - t0) / reps / 1e6;
  const series = (m.renderPrometheus().match(/^istio_requests_total\{/gm) ?? []).length;
  renderMs = { trellis: trellisMs, promClient: promMs, series };
}

const ns = (label: string): number => results.find((r) => r.label === label)?.nsPerOp ?? NaN;
const ratios = {
  promClientLabelsVsTrellisSeries: ns('prom-client inc/observe(labels)') / ns('trellis series().observe()'),
  promClientChildrenVsTrellisSeries: ns('prom-client cached children') / ns('trellis series().observe()'),
  promClientLabelsVsTrellisRecord: ns('prom-client inc/observe(labels)') / ns('trellis record(r)'),
};
const width = Math.max(...results.map((r) => r.label.length));
console.log(`${'operation'.padEnd(width)}  ns/op (CPU)  ns/op (wall)`);
for (const r of results) {
  console.log(`${r.label.padEnd(width)}  ${r.nsPerOp.toFixed(1).padStart(11)}  ${r.wallNsPerOp.toFixed(1).padStart(12)}`);
}
console.log(`render /stats/prometheus with ${renderMs.series} series: trellis ${renderMs.trellis.toFixed(2)} ms, prom-client ${renderMs.promClient.toFixed(2)} ms`);
console.log(
  `prom-client per request costs ${ratios.promClientLabelsVsTrellisSeries.toFixed(0)}x (label objects) / ` +
    `${ratios.promClientChildrenVsTrellisSeries.toFixed(0)}x (cached children) a Trellis series().observe(), ` +
    `${ratios.promClientLabelsVsTrellisRecord.toFixed(0)}x a record()`,
);
console.log(JSON.stringify({
  bench: 'telemetry',
  quick,
  iterations: N,
  nsPerOp: Object.fromEntries(results.map((r) => [r.label, Number(r.nsPerOp.toFixed(1))])),
  renderMs: { series: renderMs.series, trellis: Number(renderMs.trellis.toFixed(3)), promClient: Number(renderMs.promClient.toFixed(3)) },
  ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(1))])),
  loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
}));
