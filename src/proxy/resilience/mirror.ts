import type { Dispatcher } from 'undici';
import type { ClusterRuntime } from '../upstream/cluster.js';
import type { HeaderMap } from '../http/hop-by-hop.js';

/**
 * Fire-and-forget copy of a request to a mirror cluster (Istio `mirror`/`mirrors`). It never delays
 * or fails the main request: no await, every error swallowed, response discarded. The Host header
 * is kept as is (Istio's DISABLE_SHADOW_HOST_SUFFIX default).
 */
export function sendMirror(cluster: ClusterRuntime, method: string, path: string, headers: HeaderMap, body: Buffer | null, random: () => number): void {
  if (cluster.active >= cluster.capacity) return;
  const host = cluster.pick(undefined, random);
  if (!host) return;
  host.acquire();
  cluster.active++;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    host.release();
    cluster.active--;
  };
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {},
    onResponseStart() {},
    onResponseData() {},
    onResponseEnd: release,
    onResponseError: release,
  };
  try {
    host.getPool().dispatch({ path, method, headers, body, headersTimeout: 0, bodyTimeout: 0 }, handler);
  } catch {
    release();
  }
}
