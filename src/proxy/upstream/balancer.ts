import type { LoadBalancer } from '../../mesh/snapshot.js';
import type { EndpointState } from './endpoint.js';

/** Selection only: picks one of the candidate hosts (already filtered to the healthy set). */
export interface Balancer {
  /** `hash` is the consistent-hash key when the policy has one (undefined = none found: random). */
  pick(hosts: EndpointState[], hash: number | undefined, random: () => number): EndpointState;
  /** Called when the host set changes (the ring is rebuilt here, never per request). */
  rebuild(hosts: EndpointState[]): void;
}

/** 32-bit FNV-1a with a murmur3 finaliser for spread; used for ring points and hash keys. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

class LeastRequest implements Balancer {
  pick(hosts: EndpointState[], _h: number | undefined, random: () => number): EndpointState {
    const n = hosts.length;
    if (n === 1) return hosts[0];
    // Power of two choices (Envoy's default choice_count 2).
    const a = (random() * n) | 0;
    let b = (random() * (n - 1)) | 0;
    if (b >= a) b++;
    return hosts[b].active < hosts[a].active ? hosts[b] : hosts[a];
  }
  rebuild(): void {}
}

class RoundRobin implements Balancer {
  private next = 0;
  pick(hosts: EndpointState[]): EndpointState {
    const h = hosts[this.next % hosts.length];
    this.next = (this.next + 1) % 1_000_000_007;
    return h;
  }
  rebuild(): void {}
}

class RandomPick implements Balancer {
  pick(hosts: EndpointState[], _h: number | undefined, random: () => number): EndpointState {
    return hosts[(random() * hosts.length) | 0];
  }
  rebuild(): void {}
}

/** Ketama-style ring of at least `minimumRingSize` points, rebuilt when the host set changes. */
export class RingHash implements Balancer {
  private points = new Uint32Array(0);
  private owners: EndpointState[] = [];
  private built: EndpointState[] | undefined;
  constructor(private readonly minimumRingSize: number) {}

  rebuild(hosts: EndpointState[]): void {
    this.built = hosts;
    const n = hosts.length;
    if (n === 0) { this.points = new Uint32Array(0); this.owners = []; return; }
    const perHost = Math.max(1, Math.ceil(Math.max(this.minimumRingSize, n) / n));
    const entries: Array<[number, EndpointState]> = [];
    for (const h of hosts) for (let i = 0; i < perHost; i++) entries.push([hash32(`${h.key}_${i}`), h]);
    entries.sort((x, y) => x[0] - y[0]);
    this.points = Uint32Array.from(entries.map((e) => e[0]));
    this.owners = entries.map((e) => e[1]);
  }

  pick(hosts: EndpointState[], hash: number | undefined, random: () => number): EndpointState {
    if (hash === undefined) return hosts[(random() * hosts.length) | 0];
    if (this.built !== hosts) this.rebuild(hosts);
    const pts = this.points;
    let lo = 0, hi = pts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid] < hash) lo = mid + 1; else hi = mid;
    }
    return this.owners[lo === pts.length ? 0 : lo];
  }
}

export function createBalancer(lb: LoadBalancer): Balancer {
  if ('consistentHash' in lb) return new RingHash(lb.consistentHash.minimumRingSize || 1024);
  switch (lb.simple) {
    case 'ROUND_ROBIN': return new RoundRobin();
    case 'RANDOM': return new RandomPick();
    default: return new LeastRequest();
  }
}
