import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Discovery metrics, after istiod's pilot_xds_pushes / pilot_xds_push_time / pilot_proxy_convergence_time. */
export interface DiscoveryMetrics {
  registry: Registry;
  pushes: Counter<'type'>;
  pushBytes: Counter<string>;
  pushSeconds: Histogram<string>;
  convergenceSeconds: Histogram<string>;
  connectedProxies: Gauge<string>;
  replies: Counter<'kind'>;
  renderErrors: Counter<string>;
  /** Endpoints restored from the persisted registry whose proxy has not reconnected yet. */
  restoredEndpoints: Gauge<string>;
}

export function createDiscoveryMetrics(registry: Registry = new Registry()): DiscoveryMetrics {
  const existing = registry.getSingleMetric('trellis_discovery_pushes_total');
  if (existing) {
    // A second server on the same registry (tests, restarts) reuses the metrics instead of throwing.
    return {
      registry,
      pushes: existing as Counter<'type'>,
      pushBytes: registry.getSingleMetric('trellis_discovery_push_bytes_total') as Counter<string>,
      pushSeconds: registry.getSingleMetric('trellis_discovery_push_time_seconds') as Histogram<string>,
      convergenceSeconds: registry.getSingleMetric('trellis_discovery_proxy_convergence_time_seconds') as Histogram<string>,
      connectedProxies: registry.getSingleMetric('trellis_discovery_connected_proxies') as Gauge<string>,
      replies: registry.getSingleMetric('trellis_discovery_replies_total') as Counter<'kind'>,
      renderErrors: registry.getSingleMetric('trellis_discovery_render_errors_total') as Counter<string>,
      restoredEndpoints: registry.getSingleMetric('trellis_discovery_restored_endpoints') as Gauge<string>,
    };
  }
  const registers = [registry];
  return {
    registry,
    pushes: new Counter({
      name: 'trellis_discovery_pushes_total',
      help: 'Snapshot messages sent to proxies, by type (full or delta)',
      labelNames: ['type'],
      registers,
    }),
    pushBytes: new Counter({ name: 'trellis_discovery_push_bytes_total', help: 'Bytes of snapshot messages sent', registers }),
    pushSeconds: new Histogram({
      name: 'trellis_discovery_push_time_seconds',
      help: 'Time to render, diff and send one proxy push',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    convergenceSeconds: new Histogram({
      name: 'trellis_discovery_proxy_convergence_time_seconds',
      help: 'Time from a configuration change to the proxy ACK of the resulting snapshot',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
    connectedProxies: new Gauge({ name: 'trellis_discovery_connected_proxies', help: 'Proxies with an open discovery stream', registers }),
    replies: new Counter({
      name: 'trellis_discovery_replies_total',
      help: 'Proxy replies by classification (init, ack, nack, stale)',
      labelNames: ['kind'],
      registers,
    }),
    renderErrors: new Counter({ name: 'trellis_discovery_render_errors_total', help: 'Snapshot renders that threw', registers }),
    restoredEndpoints: new Gauge({
      name: 'trellis_discovery_restored_endpoints',
      help: 'Endpoints restored from the persisted registry at start whose proxy has not reconnected yet (removed after the grace period)',
      registers,
    }),
  };
}
