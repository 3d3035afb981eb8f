export interface DebounceOptions<E> {
  /** Quiet period: fire once no event arrived for this long (istio PILOT_DEBOUNCE_AFTER, 100 ms). */
  afterMs: number;
  /** Fire at the latest this long after the first event of a burst (istio PILOT_DEBOUNCE_MAX, 10 s). */
  maxMs: number;
  /**
   * Leading edge: the first event after a quiet period (no event for afterMs, no push running) fires
   * after only this long, so a lone change goes out fast; events that follow it within afterMs are a
   * burst and wait for the quiet period (bounded by maxMs) as usual. Default: no leading edge.
   */
  leadingMs?: number;
  merge: (older: E, newer: E) => E;
  /** The push, injected. A burst arriving while it runs is held until it finishes. */
  push: (merged: E) => void | Promise<void>;
  onError?: (err: unknown) => void;
  now?: () => number;
}

export interface Debouncer<E> {
  trigger(event: E): void;
  /** Fires a pending burst now (tests, shutdown). */
  flush(): Promise<void>;
  /** An event is waiting to be pushed (not yet handed to push). */
  readonly pending: boolean;
  close(): void;
  readonly pushing: boolean;
}

/** Merges bursts of events into one push (istio pilot/pkg/xds/discovery.go `debounce`). */
export function createDebouncer<E>(opts: DebounceOptions<E>): Debouncer<E> {
  const now = opts.now ?? Date.now;
  let pending: E | undefined;
  let firstAt = 0;
  let lastAt = Number.NEGATIVE_INFINITY;
  /** The pending burst started after a quiet period: it fires leadingMs after its first event. */
  let leading = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  function schedule(delayMs: number): void {
    if (closed || running !== undefined || timer !== undefined) return;
    timer = setTimeout(check, Math.max(0, delayMs));
  }

  function check(): void {
    timer = undefined;
    if (pending === undefined) return;
    const t = now();
    const burstAge = t - firstAt;
    if (leading) {
      if (burstAge >= (opts.leadingMs as number)) fire();
      else schedule((opts.leadingMs as number) - burstAge);
      return;
    }
    const quietFor = t - lastAt;
    if (quietFor >= opts.afterMs || burstAge >= opts.maxMs) {
      fire();
    } else {
      schedule(Math.min(opts.afterMs - quietFor, opts.maxMs - burstAge));
    }
  }

  function fire(): void {
    if (pending === undefined || running !== undefined) return;
    const event = pending;
    pending = undefined;
    leading = false;
    running = (async () => {
      try {
        await opts.push(event);
      } catch (err) {
        opts.onError?.(err);
      } finally {
        running = undefined;
        if (pending !== undefined) schedule(opts.afterMs);
      }
    })();
  }

  return {
    trigger(event: E): void {
      if (closed) return;
      const t = now();
      if (pending === undefined) {
        pending = event;
        firstAt = t;
        leading = opts.leadingMs !== undefined && running === undefined && t - lastAt >= opts.afterMs;
      } else {
        pending = opts.merge(pending, event);
      }
      lastAt = t;
      schedule(leading ? (opts.leadingMs as number) : opts.afterMs);
    },
    async flush(): Promise<void> {
      if (running !== undefined) await running;
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      fire();
      if (running !== undefined) await running;
    },
    close(): void {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
    },
    get pending(): boolean {
      return pending !== undefined;
    },
    get pushing(): boolean {
      return running !== undefined;
    },
  };
}
