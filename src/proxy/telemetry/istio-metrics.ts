/**
 * Istio's standard HTTP metrics (istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes, istio_response_bytes) with Istio's names, labels and buckets, plus
 * cumulative per-mesh-version counters for canary analysis.
 *
 * Two ways to count a request:
 * - `series(labels)` once per (route, destination), then `handle.observe(...)` per request: the
 *   fast path. Once a (code, flags) pair has been seen it builds no strings and allocates nothing:
 *   a cached last outcome or two Map lookups, then increments in one Float64Array.
 * - `record(r)`: convenience. Finds the series by comparing the record's label fields with the
 *   series of the same destination service (no key string is built), then observes as above.
 * Series are never evicted: their number is bounded by the snapshot's destinations times the
 * response codes and flags seen.
 */
import type { ProxyIdentity } from '../../mesh/snapshot.js';
import { ENVOY_DEFAULT_BUCKETS, ISTIO_BUCKET_SLOTS, ISTIO_DURATION_BUCKETS_MS, cumulate, envoyBucket } from './histogram.js';
import { STATIC_LABEL_NAMES, resolveStaticLabels, sameSeriesLabels, type SeriesLabels } from './istio-labels.js';
import { escapeLabelValue, familyHeader, formatNumber } from './prometheus-text.js';

export type { SeriesLabels, ConnectionSecurityPolicy, RequestProtocol, Reporter } from './istio-labels.js';

/** One finished request, as the request path reports it. */
export interface RequestRecord extends SeriesLabels {
  responseCode: number;
  /** Envoy response flags (`UF`, `UO`, `URX`, …), `-` when none. */
  responseFlags: string;
  /** gRPC status for `requestProtocol: 'grpc'` (label grpc_response_status); ignored for http. */
  grpcStatus?: number;
  /** From the first request byte received to the last response byte sent. */
  durationMs: number;
  /** Bytes received from the downstream; Istio counts wire bytes (headers included). */
  requestBytes: number;
  /** Bytes sent to the downstream; Istio counts wire bytes (headers included). */
  responseBytes: number;
}

/** Cumulative counters of the requests served while one mesh version was active. */
export interface VersionStats {
  meshVersion: string;
  requests: number;
  errors5xx: number;
  /** Upper bounds (ms) of the latency buckets: Istio's duration buckets. */
  latencyBucketsMs: number[];
  /** Cumulative counts (Prometheus `le` semantics): one per bound, then one for +Inf (= requests). */
  latencyCounts: number[];
  sumMs: number;
}

export interface IstioMetricsOptions {
  proxy: ProxyIdentity;
  meshVersion: string;
  /** Cluster label of this proxy's side (source_cluster / destination_cluster); default proxy.cluster. */
  cluster?: string;
}

// Layout of one outcome series' Float64Array: request count, then three histograms of
// ISTIO_BUCKET_SLOTS non-cumulative counts followed by their sum. Histogram `_count` = requests.
const SLOTS = ISTIO_BUCKET_SLOTS;
const REQUESTS = 0;
const DURATION = 1;
const DURATION_SUM = DURATION + SLOTS;
const REQ_BYTES = DURATION_SUM + 1;
const REQ_BYTES_SUM = REQ_BYTES + SLOTS;
const RESP_BYTES = REQ_BYTES_SUM + 1;
const RESP_BYTES_SUM = RESP_BYTES + SLOTS;
const OUTCOME_LENGTH = RESP_BYTES_SUM + 1;

/** Outcome-dependent part of a series: one per (code, flags, grpc status) seen. */
class OutcomeSeries {
  readonly data = new Float64Array(OUTCOME_LENGTH);
  constructor(
    /** Full label text without braces, escaped, built once. */
    readonly labelText: string,
  ) {}
}

// Layout of a mesh version's Float64Array: requests, requests per status class (0 = no response,
// 1..5 = 1xx..5xx), latency slot counts, latency sum.
const V_REQUESTS = 0;
const V_CLASS = 1;
const V_LATENCY = V_CLASS + 6;
const V_LATENCY_SUM = V_LATENCY + SLOTS;
const VERSION_LENGTH = V_LATENCY_SUM + 1;

class VersionAccumulator {
  readonly data = new Float64Array(VERSION_LENGTH);
  constructor(readonly meshVersion: string) {}
}

const CODE_CLASS_NAMES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * A pre-resolved series (its static labels): call `observe` per request. Valid for the life of the
 * IstioMetrics that made it, across mesh-version changes.
 */
export class SeriesHandle {
  /** flags → (code, grpc status) key → outcome series. */
  private readonly outcomes = new Map<string, Map<number, OutcomeSeries>>();
  private lastFlags = '';
  private lastKey = -1;
  private last: Float64Array | undefined;

  /** @internal */
  constructor(
    private readonly owner: IstioMetrics,
    /** @internal the labels this series was made from (compared by record()) */
    readonly labels: Readonly<SeriesLabels>,
    private readonly staticText: string,
    private readonly securityPolicyText: string,
    private readonly grpc: boolean,
  ) {}

  /**
   * Counts one request. `flags` is `-` when there are none; `grpcStatus` only matters for gRPC
   * series (absent = empty label, as Istio writes it when no grpc-status was seen).
   */
  observe(code: number, flags: string, durationMs: number, requestBytes: number, responseBytes: number, grpcStatus?: number): void {
    const key = this.grpc && grpcStatus !== undefined ? code + 1000 * (grpcStatus + 1) : code;
    let d = this.last;
    if (d === undefined || key !== this.lastKey || flags !== this.lastFlags) {
      d = this.lookup(code, flags, key, grpcStatus).data;
      this.last = d;
      this.lastKey = key;
      this.lastFlags = flags;
    }
    const di = envoyBucket(durationMs);
    d[REQUESTS]++;
    d[DURATION + di]++;
    d[DURATION_SUM] += durationMs;
    d[REQ_BYTES + envoyBucket(requestBytes)]++;
    d[REQ_BYTES_SUM] += requestBytes;
    d[RESP_BYTES + envoyBucket(responseBytes)]++;
    d[RESP_BYTES_SUM] += responseBytes;

    const v = this.owner.currentVersion;
    const cls = (code / 100) | 0;
    v[V_REQUESTS]++;
    v[V_CLASS + (cls >= 1 && cls <= 5 ? cls : 0)]++;
    v[V_LATENCY + di]++;
    v[V_LATENCY_SUM] += durationMs;
  }

  private lookup(code: number, flags: string, key: number, grpcStatus: number | undefined): OutcomeSeries {
    let byCode = this.outcomes.get(flags);
    if (byCode === undefined) {
      byCode = new Map();
      this.outcomes.set(flags, byCode);
    }
    let s = byCode.get(key);
    if (s === undefined) {
      const grpcText = this.grpc && grpcStatus !== undefined ? String(grpcStatus) : '';
      s = new OutcomeSeries(
        `${this.staticText},response_flags="${escapeLabelValue(flags)}",${this.securityPolicyText}` +
          `,response_code="${code}",grpc_response_status="${grpcText}"`,
      );
      byCode.set(key, s);
      this.owner.registerOutcome(s);
    }
    return s;
  }
}

export class IstioMetrics {
  private readonly proxy: ProxyIdentity;
  private readonly cluster: string;
  /** destination_service → the series of that service (few: reporters × subsets × peers). */
  private readonly byService = new Map<string, SeriesHandle[]>();
  /** Every outcome series in creation order (render order). */
  private readonly outcomes: OutcomeSeries[] = [];
  private readonly versions = new Map<string, VersionAccumulator>();
  private current: VersionAccumulator;
  /** @internal counters of the active mesh version, written by SeriesHandle.observe */
  currentVersion: Float64Array;

  constructor(opts: IstioMetricsOptions) {
    this.proxy = opts.proxy;
    this.cluster = opts.cluster ?? opts.proxy.cluster;
    this.current = this.versionAccumulator(opts.meshVersion);
    this.currentVersion = this.current.data;
  }

  /** Later requests count toward `v` in versionStats(); earlier counts stay with their version. */
  setMeshVersion(v: string): void {
    this.current = this.versionAccumulator(v);
    this.currentVersion = this.current.data;
  }

  get meshVersion(): string {
    return this.current.meshVersion;
  }

  /** Resolves (once) the series of these static labels; keep the handle and call observe per request. */
  series(labels: SeriesLabels): SeriesHandle {
    let list = this.byService.get(labels.destinationService);
    if (list === undefined) {
      list = [];
      this.byService.set(labels.destinationService, list);
    }
    for (let i = 0; i < list.length; i++) {
      if (sameSeriesLabels(list[i].labels, labels)) return list[i];
    }
    const h = this.createHandle(labels);
    list.push(h);
    return h;
  }

  /** Counts one request; convenience form of `series(r).observe(...)`. */
  record(r: RequestRecord): void {
    this.series(r).observe(r.responseCode, r.responseFlags, r.durationMs, r.requestBytes, r.responseBytes, r.grpcStatus);
  }

  /** @internal */
  registerOutcome(s: OutcomeSeries): void {
    this.outcomes.push(s);
  }

  /** Cumulative counters per mesh version, in the order the versions were first active. */
  versionStats(): VersionStats[] {
    const out: VersionStats[] = [];
    for (const acc of this.versions.values()) {
      const d = acc.data;
      out.push({
        meshVersion: acc.meshVersion,
        requests: d[V_REQUESTS],
        errors5xx: d[V_CLASS + 5],
        latencyBucketsMs: [...ISTIO_DURATION_BUCKETS_MS],
        latencyCounts: cumulate(d, V_LATENCY, SLOTS),
        sumMs: d[V_LATENCY_SUM],
      });
    }
    return out;
  }

  /** All series in Prometheus text exposition format 0.0.4. */
  renderPrometheus(): string {
    const parts: string[] = [];
    parts.push(familyHeader('istio_requests_total', 'counter', 'Total number of requests handled by the proxy (Istio standard metric).'));
    for (const s of this.outcomes) parts.push(`istio_requests_total{${s.labelText}} ${s.data[REQUESTS]}\n`);
    renderHistogramFamily(parts, 'istio_request_duration_milliseconds', 'Duration of requests in milliseconds (Istio standard metric).', this.outcomes, DURATION);
    renderHistogramFamily(parts, 'istio_request_bytes', 'Size of HTTP request bodies in bytes (Istio standard metric).', this.outcomes, REQ_BYTES);
    renderHistogramFamily(parts, 'istio_response_bytes', 'Size of HTTP response bodies in bytes (Istio standard metric).', this.outcomes, RESP_BYTES);
    parts.push(
      familyHeader(
        'trellis_proxy_requests_by_mesh_version_total',
        'counter',
        'Requests handled by this proxy while each mesh version was active, by status class (0xx = no response).',
      ),
    );
    for (const acc of this.versions.values()) {
      const v = escapeLabelValue(acc.meshVersion);
      for (let c = 0; c < CODE_CLASS_NAMES.length; c++) {
        const n = acc.data[V_CLASS + c];
        if (n !== 0) parts.push(`trellis_proxy_requests_by_mesh_version_total{mesh_version="${v}",code_class="${CODE_CLASS_NAMES[c]}"} ${n}\n`);
      }
    }
    parts.push(familyHeader('istio_build', 'gauge', 'Istio component build info; tag is the active mesh version.'));
    parts.push(`istio_build{component="proxy",tag="${escapeLabelValue(this.current.meshVersion)}"} 1\n`);
    return parts.join('');
  }

  private versionAccumulator(v: string): VersionAccumulator {
    let acc = this.versions.get(v);
    if (acc === undefined) {
      acc = new VersionAccumulator(v);
      this.versions.set(v, acc);
    }
    return acc;
  }

  private createHandle(labels: SeriesLabels): SeriesHandle {
    const { values, connectionSecurityPolicy } = resolveStaticLabels(labels, this.proxy, this.cluster);
    let text = '';
    for (let i = 0; i < STATIC_LABEL_NAMES.length; i++) {
      if (i > 0) text += ',';
      text += `${STATIC_LABEL_NAMES[i]}="${escapeLabelValue(values[i])}"`;
    }
    return new SeriesHandle(
      this,
      { ...labels },
      text,
      `connection_security_policy="${escapeLabelValue(connectionSecurityPolicy)}"`,
      labels.requestProtocol === 'grpc',
    );
  }
}

/** Bucket bounds as `le` label text, formatted once. */
const LE_TEXT = [...ENVOY_DEFAULT_BUCKETS.map(formatNumber), '+Inf'];

function renderHistogramFamily(parts: string[], name: string, help: string, series: readonly OutcomeSeries[], offset: number): void {
  parts.push(familyHeader(name, 'histogram', help));
  const bucket = `${name}_bucket{`;
  for (const s of series) {
    const d = s.data;
    let acc = 0;
    for (let i = 0; i < SLOTS; i++) {
      acc += d[offset + i];
      parts.push(`${bucket}${s.labelText},le="${LE_TEXT[i]}"} ${acc}\n`);
    }
    parts.push(`${name}_sum{${s.labelText}} ${formatNumber(d[offset + SLOTS])}\n`);
    parts.push(`${name}_count{${s.labelText}} ${d[REQUESTS]}\n`);
  }
}
