export interface DebounceOptions<E> {
  /** Quiet period: fire once no event arrived for this long (istio PILOT_DEBOUNCE_AFTER, 100 ms). */
  afterMs: number;
  /** Fire at the latest this long after the first event of a burst (istio PILOT_DEBOUNCE_MAX, 10 s). */
  maxMs: number;
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
  close(): void;
  readonly pushing: boolean;
}

/** Merges bursts of events into one push (istio pilot/pkg/xds/discovery.go `debounce`). */
export function createDebouncer<E>(opts: DebounceOptions<E>): Debouncer<E> {
  const now = opts.now ?? Date.now;
  let pending: E | undefined;
  let firstAt = 0;
  let lastAt = 0;
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
    const quietFor = t - lastAt;
    const burstAge = t - firstAt;
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
      } else {
        pending = opts.merge(pending, event);
      }
      lastAt = t;
      schedule(opts.afterMs);
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
    get pushing(): boolean {
      return running !== undefined;
    },
  };
}
