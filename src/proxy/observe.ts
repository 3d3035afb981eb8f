/**
 * The one place the request path talks to telemetry (src/proxy/telemetry): metrics series
 * resolution, access logging, request ids and trace propagation.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ProxySnapshot, UpstreamCluster } from '../mesh/snapshot.js';
import {
  IstioMetrics,
  createAccessLogger,
  ensureRequestId,
  propagateTrace,
  type AccessLogEntry,
  type AccessLogger,
  type SeriesHandle,
  type Reporter,
  type ConnectionSecurityPolicy,
} from './telemetry/index.js';
import type { EndpointState } from './upstream/endpoint.js';

export { ensureRequestId, type AccessLogEntry };

const NOOP_LOG: AccessLogger = { enabled: false, log() {}, flush() {} };

export class Observer {
  metrics: IstioMetrics | undefined;
  accessLog: AccessLogger = NOOP_LOG;
  metricsEnabled = true;
  tracing = false;
  private readonly byCluster = new Map<string, SeriesHandle>();
  private accessLogKey = '';
  private proxyService = 'unknown';

  /** Reconfigures telemetry for a snapshot (metrics survive; the mesh version moves on). */
  apply(s: ProxySnapshot, accessLogDestination?: Parameters<typeof createAccessLogger>[0]['destination']): void {
    if (!this.metrics) this.metrics = new IstioMetrics({ proxy: s.proxy, meshVersion: s.meshVersion });
    else if (this.metrics.meshVersion !== s.meshVersion) this.metrics.setMeshVersion(s.meshVersion);
    this.metricsEnabled = s.telemetry.metrics;
    this.tracing = s.telemetry.tracingSamplingPercent > 0;
    const key = `${s.telemetry.accessLog}/${s.telemetry.accessLogEncoding}`;
    if (key !== this.accessLogKey) {
      this.accessLog.flush();
      this.accessLog = createAccessLogger({ enabled: s.telemetry.accessLog, encoding: s.telemetry.accessLogEncoding, destination: accessLogDestination });
      this.accessLogKey = key;
    }
    this.proxyService = s.proxy.service ? `${s.proxy.service}.${s.proxy.namespace}.svc.cluster.local` : 'unknown';
  }

  /** Resolves (once per host or cluster) the metric series of an outbound / gateway request. */
  sourceSeries(cluster: UpstreamCluster | undefined, host: EndpointState | undefined): SeriesHandle | undefined {
    const m = this.metrics;
    if (!m) return undefined;
    if (host) {
      if (host.series) return host.series as SeriesHandle;
      const e = host.endpoint;
      const h = m.series({
        reporter: 'source',
        destinationService: cluster?.service ?? 'unknown',
        destinationWorkload: e.workload,
        destinationNamespace: e.namespace,
        destinationVersion: e.labels.version,
        destinationApp: e.labels.app,
        requestProtocol: 'http',
        connectionSecurityPolicy: 'unknown',
      });
      host.series = h;
      return h;
    }
    const key = cluster?.name ?? '';
    let h = this.byCluster.get(key);
    if (!h) {
      h = m.series({ reporter: 'source', destinationService: cluster?.service ?? 'unknown', requestProtocol: 'http', connectionSecurityPolicy: 'unknown' });
      this.byCluster.set(key, h);
    }
    return h;
  }

  /** The series of an inbound request (reporter=destination). */
  inboundSeries(policy: ConnectionSecurityPolicy, principals?: { peer?: string; local?: string }): SeriesHandle | undefined {
    const m = this.metrics;
    if (!m) return undefined;
    const reporter: Reporter = 'destination';
    return m.series({
      reporter,
      destinationService: this.proxyService,
      requestProtocol: 'http',
      connectionSecurityPolicy: policy,
      sourcePrincipal: principals?.peer,
      destinationPrincipal: principals?.local,
    });
  }

  /** Continues the trace for the upstream hop when tracing is on or the request carries a trace. */
  propagate(headers: IncomingHttpHeaders): string | undefined {
    if (this.tracing || headers.traceparent !== undefined || headers.b3 !== undefined || headers['x-b3-traceid'] !== undefined) {
      return propagateTrace(headers).traceId;
    }
    return undefined;
  }

  /** Empty when the snapshot turns metrics off (telemetry.metrics: false). */
  renderPrometheus(): string {
    return this.metrics && this.metricsEnabled ? this.metrics.renderPrometheus() : '';
  }
}
