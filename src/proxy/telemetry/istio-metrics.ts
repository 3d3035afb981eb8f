/**
 * Istio's standard HTTP metrics (istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes, istio_response_bytes) with Istio's names, labels and buckets, plus
 * cumulative per-mesh-version counters for canary analysis.
 *
 * Two ways to count a request:
 * - `record(r)`: convenience; finds the series by a key string built from the record's labels.
 * - `series(labels)` once per (route, destination), then `handle.observe(...)` per request: the
 *   fast path; it builds no strings and allocates nothing once a (code, flags) pair has been seen.
 * Series are never evicted: their number is bounded by the snapshot's destinations times the
 * response codes and flags seen.
 */
import type { ProxyIdentity } from '../../mesh/snapshot.js';
import { FixedHistogram, ISTIO_BYTES_BUCKETS, ISTIO_DURATION_BUCKETS_MS } from './histogram.js';
import {
  STATIC_LABEL_NAMES,
  resolveStaticLabels,
  seriesKey,
  type SeriesLabels,
  type ConnectionSecurityPolicy,
  type RequestProtocol,
  type Reporter,
} from './istio-labels.js';
import { escapeLabelValue, familyHeader, formatNumber } from './prometheus-text.js';

export type { SeriesLabels, ConnectionSecurityPolicy, RequestProtocol, Reporter } from './istio-labels.js';

/** One finished request, as the request path reports it. */
export interface RequestRecord extends SeriesLabels {
  responseCode: number;
  /** Envoy response flags (`UF`, `UO`, `URX`, …), `-` when none. */
  responseFlags: string;
  /** gRPC status for `requestProtocol: 'grpc'` (label grpc_response_status); ignored for http. */
  grpcStatus?: number;
  durationMs: number;
  requestBytes: number;
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

/** Outcome-dependent part of a series: one per (code, flags, grpc status) seen. */
class OutcomeSeries {
  requests = 0;
  readonly duration = new FixedHistogram(ISTIO_DURATION_BUCKETS_MS);
  readonly requestBytes = new FixedHistogram(ISTIO_BYTES_BUCKETS);
  readonly responseBytes = new FixedHistogram(ISTIO_BYTES_BUCKETS);
  constructor(
    /** Full label text without braces, escaped, built once. */
    readonly labelText: string,
  ) {}
}

class VersionAccumulator {
  requests = 0;
  /** Requests per status class: index 0 = no response (code 0), 1..5 = 1xx..5xx. */
  readonly byClass = new Float64Array(6);
  readonly latency = new FixedHistogram(ISTIO_DURATION_BUCKETS_MS);
  constructor(readonly meshVersion: string) {}

  observe(code: number, durationMs: number): void {
    this.requests++;
    const cls = (code / 100) | 0;
    this.byClass[cls >= 1 && cls <= 5 ? cls : 0]++;
    this.latency.observe(durationMs);
  }
}

const CODE_CLASS_NAMES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * A pre-resolved series (its static labels): call `observe` per request. Valid for the life of the
 * IstioMetrics that made it, across mesh-version changes.
 */
export class SeriesHandle {
  /** flags → (code + grpc status key) → outcome series. */
  private readonly outcomes = new Map<string, Map<number, OutcomeSeries>>();
  private lastFlags = '';
  private lastKey = -1;
  private last: OutcomeSeries | undefined;

  /** @internal */
  constructor(
    private readonly owner: IstioMetrics,
    /** @internal static labels up to request_protocol, escaped, without braces */
    readonly staticText: string,
    /** @internal */
    readonly securityPolicyText: string,
    private readonly grpc: boolean,
  ) {}

  /**
   * Counts one request. `flags` is `-` when there are none; `grpcStatus` only matters for gRPC
   * series (absent = the label is empty, as Istio does when no grpc-status was seen).
   */
  observe(code: number, flags: string, durationMs: number, requestBytes: number, responseBytes: number, grpcStatus?: number): void {
    const key = this.grpc && grpcStatus !== undefined ? code + 1000 * (grpcStatus + 1) : code;
    let s = this.last;
    if (s === undefined || key !== this.lastKey || flags !== this.lastFlags) {
      s = this.lookup(code, flags, key, grpcStatus);
      this.last = s;
      this.lastKey = key;
      this.lastFlags = flags;
    }
    s.requests++;
    s.duration.observe(durationMs);
    s.requestBytes.observe(requestBytes);
    s.responseBytes.observe(responseBytes);
    this.owner.current.observe(code, durationMs);
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
  private readonly byKey = new Map<string, SeriesHandle>();
  /** Every outcome series in creation order (render order). */
  private readonly outcomes: OutcomeSeries[] = [];
  private readonly versions = new Map<string, VersionAccumulator>();
  /** @internal the accumulator of the active mesh version */
  current: VersionAccumulator;

  constructor(opts: IstioMetricsOptions) {
    this.proxy = opts.proxy;
    this.cluster = opts.cluster ?? opts.proxy.cluster;
    this.current = this.versionAccumulator(opts.meshVersion);
  }

  /** Later requests count toward `v` in versionStats(); earlier counts stay with their version. */
  setMeshVersion(v: string): void {
    this.current = this.versionAccumulator(v);
  }

  get meshVersion(): string {
    return this.current.meshVersion;
  }

  /** Resolves (once) the series of these static labels; keep the handle and call observe per request. */
  series(labels: SeriesLabels): SeriesHandle {
    const key = seriesKey(labels);
    let h = this.byKey.get(key);
    if (h === undefined) {
      h = this.createHandle(labels);
      this.byKey.set(key, h);
    }
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
      out.push({
        meshVersion: acc.meshVersion,
        requests: acc.requests,
        errors5xx: acc.byClass[5],
        latencyBucketsMs: [...ISTIO_DURATION_BUCKETS_MS],
        latencyCounts: acc.latency.cumulative(),
        sumMs: acc.latency.sum,
      });
    }
    return out;
  }

  /** All series in Prometheus text exposition format 0.0.4. */
  renderPrometheus(): string {
    let out = '';
    out += familyHeader('istio_requests_total', 'counter', 'Total number of requests handled by the proxy (Istio standard metric).');
    for (const s of this.outcomes) out += `istio_requests_total{${s.labelText}} ${s.requests}\n`;
    out += renderHistogramFamily(
      'istio_request_duration_milliseconds',
      'Duration of requests in milliseconds (Istio standard metric).',
      this.outcomes,
      (s) => s.duration,
    );
    out += renderHistogramFamily('istio_request_bytes', 'Size of HTTP request bodies in bytes (Istio standard metric).', this.outcomes, (s) => s.requestBytes);
    out += renderHistogramFamily('istio_response_bytes', 'Size of HTTP response bodies in bytes (Istio standard metric).', this.outcomes, (s) => s.responseBytes);
    out += familyHeader(
      'trellis_proxy_requests_by_mesh_version_total',
      'counter',
      'Requests handled by this proxy while each mesh version was active, by status class (0xx = no response).',
    );
    for (const acc of this.versions.values()) {
      const v = escapeLabelValue(acc.meshVersion);
      for (let c = 0; c < CODE_CLASS_NAMES.length; c++) {
        if (acc.byClass[c] === 0) continue;
        out += `trellis_proxy_requests_by_mesh_version_total{mesh_version="${v}",code_class="${CODE_CLASS_NAMES[c]}"} ${acc.byClass[c]}\n`;
      }
    }
    out += familyHeader('istio_build', 'gauge', 'Istio component build info; tag is the active mesh version.');
    out += `istio_build{component="proxy",tag="${escapeLabelValue(this.current.meshVersion)}"} 1\n`;
    return out;
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
      text,
      `connection_security_policy="${escapeLabelValue(connectionSecurityPolicy)}"`,
      labels.requestProtocol === 'grpc',
    );
  }
}

function renderHistogramFamily(
  name: string,
  help: string,
  series: readonly OutcomeSeries[],
  pick: (s: OutcomeSeries) => FixedHistogram,
): string {
  let out = familyHeader(name, 'histogram', help);
  for (const s of series) {
    const h = pick(s);
    let acc = 0;
    for (let i = 0; i <= h.bounds.length; i++) {
      acc += h.counts[i];
      const le = i < h.bounds.length ? formatNumber(h.bounds[i]) : '+Inf';
      out += `${name}_bucket{${s.labelText},le="${le}"} ${acc}\n`;
    }
    out += `${name}_sum{${s.labelText}} ${formatNumber(h.sum)}\n`;
    out += `${name}_count{${s.labelText}} ${h.count}\n`;
  }
  return out;
}
