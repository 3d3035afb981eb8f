import { describe, expect, it } from '@jest/globals';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import type { ProxyIdentity } from '../../../src/mesh/snapshot.js';
import {
  ENVOY_DEFAULT_BUCKETS,
  ISTIO_DURATION_BUCKETS_MS,
  IstioMetrics,
  bucketIndex,
  envoyBucket,
  type RequestRecord,
} from '../../../src/proxy/telemetry/index.js';

const PRODUCTPAGE: ProxyIdentity = {
  id: 'east/default/productpage-v1/productpage-v1-abc',
  cluster: 'east',
  namespace: 'default',
  workload: 'productpage-v1',
  labels: { app: 'productpage', version: 'v1' },
  service: 'productpage',
  serviceAccount: 'bookinfo-productpage',
  mode: 'sidecar',
};

const REVIEWS_V2: ProxyIdentity = {
  id: 'east/default/reviews-v2/reviews-v2-xyz',
  cluster: 'east',
  namespace: 'default',
  workload: 'reviews-v2',
  labels: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews-canonical' },
  service: 'reviews',
  serviceAccount: 'bookinfo-reviews',
  mode: 'sidecar',
};

function outbound(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    reporter: 'source',
    destinationService: 'reviews.default.svc.cluster.local',
    destinationWorkload: 'reviews-v2',
    destinationNamespace: 'default',
    destinationApp: 'reviews',
    destinationVersion: 'v2',
    requestProtocol: 'http',
    responseCode: 200,
    responseFlags: '-',
    connectionSecurityPolicy: 'unknown',
    durationMs: 1,
    requestBytes: 0,
    responseBytes: 100,
    ...over,
  };
}

/** Every label Istio's standard metrics carry (istio/proxy istio_stats.cc, all_tags_). */
const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'response_code',
  'grpc_response_status',
].sort();

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the exposition with the real parser twice: as served (validity, families, HELP/TYPE,
 * counters) and with histogram TYPE lines removed, because this parser folds labelled histogram
 * series into one unlabelled sample; untyped, every `_bucket`/`_sum`/`_count` line keeps its labels.
 */
function parse(text: string): { families: ParsedFamily[]; samples: Sample[] } {
  const families = parsePrometheusTextFormat(text);
  const untyped = text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
  const samples: Sample[] = [];
  for (const f of parsePrometheusTextFormat(untyped)) {
    for (const m of f.metrics) samples.push({ name: f.name, labels: m.labels ?? {}, value: Number(m.value) });
  }
  return { families, samples };
}

function find(samples: Sample[], name: string, match: Record<string, string>): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

function one(samples: Sample[], name: string, match: Record<string, string>): Sample {
  const found = find(samples, name, match);
  expect(found).toHaveLength(1);
  return found[0];
}

describe('IstioMetrics exposition', () => {
  it('serves the four standard families with their types and HELP lines', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: '1.22.0' });
    m.record(outbound());
    const { families } = parse(m.renderPrometheus());
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get('istio_requests_total')?.type).toBe('COUNTER');
    expect(byName.get('istio_request_duration_milliseconds')?.type).toBe('HISTOGRAM');
    expect(byName.get('istio_request_bytes')?.type).toBe('HISTOGRAM');
    expect(byName.get('istio_response_bytes')?.type).toBe('HISTOGRAM');
    for (const f of families) expect(f.help.length).toBeGreaterThan(0);
  });

  it('labels a source-reported request exactly as Istio does, filling the local side from the proxy identity', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: '1.22.0' });
    m.record(outbound());
    m.record(outbound());
    const { samples } = parse(m.renderPrometheus());
    const total = one(samples, 'istio_requests_total', {});
    expect(Object.keys(total.labels).sort()).toEqual(ISTIO_LABELS);
    expect(total.labels).toEqual({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_workload_namespace: 'default',
      source_principal: 'unknown',
      source_app: 'productpage',
      source_version: 'v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_cluster: 'east',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'default',
      destination_principal: 'unknown',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_cluster: 'unknown',
      request_protocol: 'http',
      response_flags: '-',
      connection_security_policy: 'unknown',
      response_code: '200',
      grpc_response_status: '',
    });
    expect(total.value).toBe(2);
  });

  it('fills the destination side from the proxy for reporter=destination and marks unknown peers', () => {
    const m = new IstioMetrics({ proxy: REVIEWS_V2, meshVersion: '1.22.0', cluster: 'east-override' });
    m.record({
      reporter: 'destination',
      destinationService: 'reviews.default.svc.cluster.local',
      sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
      destinationPrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
      requestProtocol: 'http',
      responseCode: 503,
      responseFlags: 'UO',
      connectionSecurityPolicy: 'mutual_tls',
      durationMs: 2,
      requestBytes: 10,
      responseBytes: 20,
    });
    const { samples } = parse(m.renderPrometheus());
    const s = one(samples, 'istio_requests_total', { reporter: 'destination' });
    expect(s.labels).toMatchObject({
      source_workload: 'unknown',
      // From the SPIFFE principal, as istio_stats.cc does when peer metadata is missing.
      source_workload_namespace: 'default',
      source_app: 'unknown',
      source_version: 'unknown',
      source_canonical_service: 'unknown',
      source_canonical_revision: 'latest',
      source_cluster: 'unknown',
      source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'default',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_canonical_service: 'reviews-canonical',
      destination_canonical_revision: 'v2',
      destination_cluster: 'east-override',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
      response_code: '503',
      response_flags: 'UO',
      connection_security_policy: 'mutual_tls',
    });
  });

  it('names its own canonical service when a server-side proxy knows no service host', () => {
    const m = new IstioMetrics({ proxy: REVIEWS_V2, meshVersion: 'v1' });
    const h = m.series({ reporter: 'destination', destinationService: 'unknown', requestProtocol: 'http', connectionSecurityPolicy: 'none' });
    h.observe(200, '-', 1, 1, 1);
    const { samples } = parse(m.renderPrometheus());
    expect(one(samples, 'istio_requests_total', {}).labels).toMatchObject({
      destination_service: 'reviews-canonical',
      destination_service_name: 'reviews-canonical',
      destination_service_namespace: 'default',
      source_workload_namespace: 'unknown',
      source_principal: 'unknown',
      connection_security_policy: 'none',
    });
  });

  it('names non-Kubernetes destinations by host and carries gRPC status', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: 'v1' });
    m.record(outbound({ destinationService: 'api.example.com', destinationWorkload: undefined, destinationNamespace: 'egress' }));
    m.record(outbound({ requestProtocol: 'grpc', grpcStatus: 14, responseCode: 200 }));
    m.record(outbound({ requestProtocol: 'grpc', grpcStatus: 0, responseCode: 200 }));
    const { samples } = parse(m.renderPrometheus());
    const ext = one(samples, 'istio_requests_total', { destination_service: 'api.example.com' });
    expect(ext.labels.destination_service_name).toBe('api.example.com');
    expect(ext.labels.destination_service_namespace).toBe('egress');
    expect(ext.labels.destination_workload).toBe('unknown');
    expect(one(samples, 'istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '14' }).value).toBe(1);
    expect(one(samples, 'istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '0' }).value).toBe(1);
  });

  it('counts histograms cumulatively in Istio buckets with +Inf, _sum and _count', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: 'v1' });
    const durations = [0.3, 3, 7, 7000, 4_000_000];
    const sizes = [0, 1, 150, 2_000_000, 5];
    for (let i = 0; i < durations.length; i++) {
      m.record(outbound({ durationMs: durations[i], requestBytes: sizes[i], responseBytes: sizes[i] * 2 }));
    }
    const { samples } = parse(m.renderPrometheus());
    const buckets = find(samples, 'istio_request_duration_milliseconds_bucket', {});
    expect(buckets.map((b) => b.labels.le)).toEqual([...ISTIO_DURATION_BUCKETS_MS.map(String), '+Inf']);
    const le = (name: string, bound: string): number => one(samples, `${name}_bucket`, { le: bound }).value;
    for (const bound of ISTIO_DURATION_BUCKETS_MS) {
      expect(le('istio_request_duration_milliseconds', String(bound))).toBe(durations.filter((d) => d <= bound).length);
      expect(le('istio_request_bytes', String(bound))).toBe(sizes.filter((d) => d <= bound).length);
      expect(le('istio_response_bytes', String(bound))).toBe(sizes.filter((d) => d * 2 <= bound).length);
    }
    expect(le('istio_request_duration_milliseconds', '+Inf')).toBe(5);
    expect(one(samples, 'istio_request_duration_milliseconds_sum', {}).value).toBeCloseTo(4_007_010.3, 6);
    expect(one(samples, 'istio_request_duration_milliseconds_count', {}).value).toBe(5);
    expect(one(samples, 'istio_request_bytes_sum', {}).value).toBe(2_000_156);
    expect(one(samples, 'istio_response_bytes_sum', {}).value).toBe(4_000_312);
    expect(one(samples, 'istio_response_bytes_count', {}).value).toBe(5);
  });

  it('keeps one series per outcome, and series() handles feed the same series as record()', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: 'v1' });
    const { responseCode: _c, responseFlags: _f, durationMs: _d, requestBytes: _q, responseBytes: _r, ...labels } = outbound();
    const handle = m.series(labels);
    expect(m.series({ ...labels })).toBe(handle);
    handle.observe(200, '-', 1, 0, 10);
    handle.observe(200, '-', 1, 0, 10);
    handle.observe(503, 'UF', 1, 0, 0);
    handle.observe(503, 'UO', 1, 0, 0);
    handle.observe(503, 'UF', 1, 0, 0);
    m.record(outbound({ responseCode: 200 }));
    const { samples } = parse(m.renderPrometheus());
    expect(find(samples, 'istio_requests_total', {})).toHaveLength(3);
    expect(one(samples, 'istio_requests_total', { response_code: '200', response_flags: '-' }).value).toBe(3);
    expect(one(samples, 'istio_requests_total', { response_code: '503', response_flags: 'UF' }).value).toBe(2);
    expect(one(samples, 'istio_requests_total', { response_code: '503', response_flags: 'UO' }).value).toBe(1);
  });

  it('escapes backslash, double quote and newline in label values', () => {
    const m = new IstioMetrics({
      proxy: { ...PRODUCTPAGE, labels: { app: 'a"b\\c\nd', version: 'v"1' } },
      meshVersion: 'mesh "x"\\\n',
    });
    const nasty = 'we\\ird"svc\nname';
    m.record(outbound({ destinationService: nasty, responseFlags: 'U"F' }));
    const text = m.renderPrometheus();
    // Every sample is one physical line: no raw newline leaked from a value.
    for (const line of text.split('\n')) {
      if (line !== '' && !line.startsWith('#')) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$/);
    }
    const { samples } = parse(text);
    const s = one(samples, 'istio_requests_total', {});
    expect(s.labels.destination_service).toBe(nasty);
    expect(s.labels.source_app).toBe('a"b\\c\nd');
    expect(s.labels.response_flags).toBe('U"F');
    expect(one(samples, 'trellis_proxy_requests_by_mesh_version_total', {}).labels.mesh_version).toBe('mesh "x"\\\n');
  });

  it('renders a valid, empty-bodied exposition before any request', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: 'v1' });
    const { families, samples } = parse(m.renderPrometheus());
    expect(families.map((f) => f.name)).toContain('istio_requests_total');
    expect(find(samples, 'istio_requests_total', {})).toHaveLength(0);
  });
});

describe('IstioMetrics per mesh version', () => {
  it('splits cumulative counters by the mesh version active when each request finished', () => {
    const m = new IstioMetrics({ proxy: PRODUCTPAGE, meshVersion: '1.21.2' });
    const { responseCode: _c, responseFlags: _f, durationMs: _d, requestBytes: _q, responseBytes: _r, ...labels } = outbound();
    const handle = m.series(labels);
    m.record(outbound({ durationMs: 2 }));
    handle.observe(503, 'UF', 30, 0, 0);
    m.setMeshVersion('1.22.0');
    handle.observe(200, '-', 0.2, 0, 1);
    handle.observe(500, '-', 700, 0, 1);
    handle.observe(502, '-', 7, 0, 1);
    m.setMeshVersion('1.21.2'); // rollback: counting resumes on the old version's totals
    m.record(outbound({ durationMs: 1 }));

    const stats = m.versionStats();
    expect(stats.map((s) => s.meshVersion)).toEqual(['1.21.2', '1.22.0']);
    const [oldV, newV] = stats;
    expect(oldV).toMatchObject({ requests: 3, errors5xx: 1, sumMs: 33 });
    expect(newV).toMatchObject({ requests: 3, errors5xx: 2, sumMs: 707.2 });
    expect(newV.latencyBucketsMs).toEqual([...ISTIO_DURATION_BUCKETS_MS]);
    expect(newV.latencyCounts).toHaveLength(ISTIO_DURATION_BUCKETS_MS.length + 1);
    const at = (s: typeof newV, bound: number): number => s.latencyCounts[s.latencyBucketsMs.indexOf(bound)];
    expect(at(newV, 0.5)).toBe(1);
    expect(at(newV, 10)).toBe(2);
    expect(at(newV, 1000)).toBe(3);
    expect(newV.latencyCounts[newV.latencyCounts.length - 1]).toBe(3);
    expect(at(oldV, 1)).toBe(1);
    expect(at(oldV, 5)).toBe(2);
    expect(at(oldV, 50)).toBe(3);

    // versionStats is a snapshot: mutating it does not touch the live counters.
    newV.latencyCounts[0] = 999;
    expect(m.versionStats()[1].latencyCounts[0]).toBe(1);

    const { samples } = parse(m.renderPrometheus());
    const byVersion = (v: string, cls: string): number | undefined =>
      find(samples, 'trellis_proxy_requests_by_mesh_version_total', { mesh_version: v, code_class: cls })[0]?.value;
    expect(byVersion('1.21.2', '2xx')).toBe(2);
    expect(byVersion('1.21.2', '5xx')).toBe(1);
    expect(byVersion('1.22.0', '2xx')).toBe(1);
    expect(byVersion('1.22.0', '5xx')).toBe(2);
    // The Istio series themselves carry no mesh-version label.
    expect(find(samples, 'istio_requests_total', {}).every((s) => !('mesh_version' in s.labels))).toBe(true);
    expect(one(samples, 'istio_build', { component: 'proxy' }).labels.tag).toBe('1.21.2');
  });
});

describe('envoyBucket', () => {
  it('agrees with the generic bucket search at, just below and just above every bound', () => {
    const probes = [-1, 0, Number.MAX_VALUE, Infinity];
    for (const b of ENVOY_DEFAULT_BUCKETS) probes.push(b, b - 1e-9, b + 1e-9, b * 0.999, b * 1.001);
    for (const v of probes) expect([v, envoyBucket(v)]).toEqual([v, bucketIndex(ENVOY_DEFAULT_BUCKETS, v)]);
    expect(envoyBucket(NaN)).toBe(ENVOY_DEFAULT_BUCKETS.length);
  });
});
