import type { WorkloadEndpoint } from '../render/types.js';
import { canonicalJson } from './resources.js';

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function compareEndpoints(a: WorkloadEndpoint, b: WorkloadEndpoint): number {
  return (
    cmp(a.namespace, b.namespace) ||
    cmp(a.service, b.service) ||
    cmp(a.address, b.address) ||
    a.port - b.port ||
    cmp(a.proxyId ?? '', b.proxyId ?? '')
  );
}

/**
 * The service registry: endpoints registered by proxies over discovery plus static ones
 * (ServiceEntry / WorkloadEntry). `list()` is sorted and keeps its identity until something
 * changes, so renders stay deterministic and can be cached on it.
 */
export class EndpointRegistry {
  private readonly registered = new Map<string, WorkloadEndpoint>();
  private readonly registeredJson = new Map<string, string>();
  private staticEndpoints: WorkloadEndpoint[] = [];
  private staticJson = '[]';
  private cached: WorkloadEndpoint[] | null = null;

  /** Registers (or replaces) a proxy's endpoint; true when the registry changed. */
  register(proxyId: string, endpoint: WorkloadEndpoint): boolean {
    const json = canonicalJson(endpoint);
    if (this.registeredJson.get(proxyId) === json) return false;
    this.registered.set(proxyId, endpoint);
    this.registeredJson.set(proxyId, json);
    this.cached = null;
    return true;
  }

  unregister(proxyId: string): boolean {
    if (!this.registered.delete(proxyId)) return false;
    this.registeredJson.delete(proxyId);
    this.cached = null;
    return true;
  }

  has(proxyId: string): boolean {
    return this.registered.has(proxyId);
  }

  /** Replaces every static endpoint; true when the set changed. */
  setStatic(endpoints: WorkloadEndpoint[]): boolean {
    const sorted = [...endpoints].sort(compareEndpoints);
    const json = canonicalJson(sorted);
    if (json === this.staticJson) return false;
    this.staticEndpoints = sorted;
    this.staticJson = json;
    this.cached = null;
    return true;
  }

  list(): WorkloadEndpoint[] {
    if (this.cached === null) {
      this.cached = [...this.registered.values(), ...this.staticEndpoints].sort(compareEndpoints);
    }
    return this.cached;
  }
}
