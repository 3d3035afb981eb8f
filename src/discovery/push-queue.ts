/**
 * At most one pending push per proxy (STYLE §16, after istio's pilot/pkg/xds/pushqueue.go):
 * a request for a proxy already waiting merges into it; a request for a proxy being pushed right
 * now is held and re-queued when that push is marked done, so no change is lost and no proxy gets
 * two concurrent pushes.
 */
export class PushQueue<K, R> {
  private readonly pending = new Map<K, R>();
  private readonly processing = new Set<K>();
  private readonly held = new Map<K, R>();

  constructor(private readonly merge: (older: R, newer: R) => R) {}

  enqueue(key: K, request: R): void {
    if (this.processing.has(key)) {
      const held = this.held.get(key);
      this.held.set(key, held === undefined ? request : this.merge(held, request));
      return;
    }
    const waiting = this.pending.get(key);
    // Map keeps insertion order: a merged request keeps its place in line.
    this.pending.set(key, waiting === undefined ? request : this.merge(waiting, request));
  }

  /** Takes the oldest waiting push and marks its proxy as being pushed. */
  dequeue(): { key: K; request: R } | undefined {
    const first = this.pending.entries().next();
    if (first.done) return undefined;
    const [key, request] = first.value;
    this.pending.delete(key);
    this.processing.add(key);
    return { key, request };
  }

  /** Ends a push; a request that arrived meanwhile goes back in line. */
  markDone(key: K): void {
    this.processing.delete(key);
    const held = this.held.get(key);
    if (held !== undefined) {
      this.held.delete(key);
      this.enqueue(key, held);
    }
  }

  /** Drops everything waiting for a proxy (it disconnected). */
  remove(key: K): void {
    this.pending.delete(key);
    this.held.delete(key);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get processingCount(): number {
    return this.processing.size;
  }

  isIdle(): boolean {
    return this.pending.size === 0 && this.processing.size === 0 && this.held.size === 0;
  }
}
