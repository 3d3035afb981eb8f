import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
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

/** One registered endpoint and the proxy that registered it. */
export interface RegisteredEndpoint {
  proxyId: string;
  endpoint: WorkloadEndpoint;
}

/**
 * The service registry: endpoints registered by proxies over discovery plus static ones
 * (ServiceEntry / WorkloadEntry). `list()` is sorted and keeps its identity until something
 * changes, so renders stay deterministic and can be cached on it.
 *
 * Endpoints brought back from a previous run (`restore`) are provisional: they count like any
 * other until their proxy reconnects (it confirms or replaces them) or their deadline passes
 * (`expire` removes them), so a restarted operator starts from the registry it had.
 */
export class EndpointRegistry {
  private readonly registered = new Map<string, WorkloadEndpoint>();
  private readonly registeredJson = new Map<string, string>();
  /** Restored endpoints not yet confirmed by their proxy, with the time they expire. */
  private readonly provisional = new Map<string, number>();
  private staticEndpoints: WorkloadEndpoint[] = [];
  private staticJson = '[]';
  private cached: WorkloadEndpoint[] | null = null;
  private changes = 0;

  /** Registers (or replaces) a proxy's endpoint and confirms a restored one; true when the registry changed. */
  register(proxyId: string, endpoint: WorkloadEndpoint): boolean {
    this.provisional.delete(proxyId);
    const json = canonicalJson(endpoint);
    if (this.registeredJson.get(proxyId) === json) return false;
    this.registered.set(proxyId, endpoint);
    this.registeredJson.set(proxyId, json);
    this.changed();
    return true;
  }

  unregister(proxyId: string): boolean {
    this.provisional.delete(proxyId);
    if (!this.registered.delete(proxyId)) return false;
    this.registeredJson.delete(proxyId);
    this.changed();
    return true;
  }

  has(proxyId: string): boolean {
    return this.registered.has(proxyId);
  }

  /** The endpoint was restored from a previous run and its proxy has not reconnected since. */
  isProvisional(proxyId: string): boolean {
    return this.provisional.has(proxyId);
  }

  get provisionalCount(): number {
    return this.provisional.size;
  }

  /**
   * Brings back endpoints registered in a previous run as provisional until `expiresAt`; a proxy
   * that registered in this run already keeps its own. Returns how many were restored.
   */
  restore(entries: readonly RegisteredEndpoint[], expiresAt: number): number {
    let restored = 0;
    for (const { proxyId, endpoint } of entries) {
      if (this.registered.has(proxyId)) continue;
      this.registered.set(proxyId, endpoint);
      this.registeredJson.set(proxyId, canonicalJson(endpoint));
      this.provisional.set(proxyId, expiresAt);
      restored++;
    }
    if (restored > 0) this.changed();
    return restored;
  }

  /** Removes the provisional endpoints whose deadline has passed; returns their proxy ids. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const [proxyId, expiresAt] of this.provisional) if (expiresAt <= now) gone.push(proxyId);
    for (const proxyId of gone) this.unregister(proxyId);
    return gone;
  }

  /** The proxy-registered endpoints (not static ones), by proxy id: what is persisted. */
  registeredEntries(): RegisteredEndpoint[] {
    return [...this.registered].sort(([a], [b]) => cmp(a, b)).map(([proxyId, endpoint]) => ({ proxyId, endpoint }));
  }

  /** Grows by one at every change of the registered endpoints (persistence watches it). */
  get revision(): number {
    return this.changes;
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

  private changed(): void {
    this.cached = null;
    this.changes++;
  }
}

/** The persisted registry: readable JSON, one entry per proxy. */
export interface EndpointRegistryFileContent {
  version: 1;
  savedAt: string;
  endpoints: RegisteredEndpoint[];
}

export type LoadedEndpoints = { found: true; savedAt: string; endpoints: RegisteredEndpoint[] } | { found: false; error?: string };

function isEndpoint(value: unknown): value is WorkloadEndpoint {
  const e = value as Partial<WorkloadEndpoint> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.service === 'string' &&
    typeof e.namespace === 'string' &&
    typeof e.address === 'string' &&
    typeof e.port === 'number' &&
    typeof e.labels === 'object' &&
    e.labels !== null &&
    (e.tlsMode === 'istio' || e.tlsMode === 'disabled')
  );
}

/** Reads a registry file; a missing file is `found: false`, a damaged one too, with the reason (file and field). */
export async function loadEndpointRegistryFile(path: string): Promise<LoadedEndpoints> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { found: false };
    return { found: false, error: `${path}: ${(err as Error).message}` };
  }
  let parsed: Partial<EndpointRegistryFileContent>;
  try {
    parsed = JSON.parse(text) as Partial<EndpointRegistryFileContent>;
  } catch (err) {
    return { found: false, error: `${path}: not JSON: ${(err as Error).message}` };
  }
  if (parsed?.version !== 1 || !Array.isArray(parsed.endpoints)) return { found: false, error: `${path}: expected {"version": 1, "endpoints": [...]}` };
  const endpoints: RegisteredEndpoint[] = [];
  for (const [i, entry] of parsed.endpoints.entries()) {
    if (typeof entry?.proxyId !== 'string' || !isEndpoint(entry.endpoint)) return { found: false, error: `${path}: endpoints[${i}]: expected {proxyId, endpoint: {service, namespace, address, port, labels, tlsMode}}` };
    endpoints.push({ proxyId: entry.proxyId, endpoint: entry.endpoint });
  }
  return { found: true, savedAt: typeof parsed.savedAt === 'string' ? parsed.savedAt : '', endpoints };
}

/** Writes the registry atomically: a temp file in the same directory, then rename (a crash leaves the old file or the new one). */
export async function saveEndpointRegistryFile(path: string, endpoints: readonly RegisteredEndpoint[], now = Date.now()): Promise<void> {
  const content: EndpointRegistryFileContent = { version: 1, savedAt: new Date(now).toISOString(), endpoints: [...endpoints] };
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(content, null, 2) + '\n', { mode: 0o600 });
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
