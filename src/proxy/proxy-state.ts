import type { ProxySnapshot } from '../mesh/snapshot.js';
import type { RouteTable } from './routing/route-table.js';
import type { CompiledRetry } from './resilience/retry-policy.js';
import type { ClusterRuntime } from './upstream/cluster.js';

/** What a request needs to know about the listener it arrived on. */
export interface ListenerInfo {
  kind: 'outbound' | 'inbound' | 'gateway';
  scheme: 'http' | 'https';
  port: number;
  routeConfig: string;
  httpsRedirect: boolean;
}

/** Per-route state precomputed at apply time. */
export interface RouteRuntime {
  retry: CompiledRetry | undefined;
  bufferBody: boolean;
}

/** Everything derived from one snapshot; requests keep the state they started with. */
export interface ProxyState {
  snapshot: ProxySnapshot;
  tables: Map<string, RouteTable>;
  clusters: Map<string, ClusterRuntime>;
}
