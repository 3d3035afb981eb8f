import { CronJob, validateCronExpression } from 'cron';

/** When to poll: a fixed interval, or a cron expression (5 or 6 fields, seconds first when 6). */
export type Schedule = { intervalMs: number } | { cron: string };

export type Trigger = 'startup' | 'schedule' | 'webhook' | 'retry' | 'manual';

/** What one run asks of the loop: the outcome decides when the next run happens. */
export interface RunOutcome {
  result: 'applied' | 'unchanged' | 'stalled' | 'waiting' | 'transient';
  requeueAfterMs?: number;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1_000, maxMs: 5 * 60_000, factor: 2 };
/** Webhook bursts (several pushes, GitHub redeliveries) within this window make one trailing run after the leading one. */
export const DEFAULT_DEBOUNCE_MS = 50;

/** Parses `500ms`, `30s`, `5m`, `1h30m` (Go duration style, like Flux's `interval`). */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    consumed = re.lastIndex;
  }
  if (consumed !== t.length || t.length === 0) throw new Error(`invalid duration "${text}" (expected e.g. 30s, 5m, 1h30m, 500ms)`);
  return Math.round(total);
}

export function validateSchedule(schedule: Schedule): void {
  if ('cron' in schedule) {
    const v = validateCronExpression(schedule.cron);
    if (!v.valid) throw new Error(`invalid cron expression "${schedule.cron}": ${v.error?.message ?? 'invalid'}`);
  } else if (!(schedule.intervalMs > 0)) throw new Error(`poll interval must be positive, got ${schedule.intervalMs} ms`);
}

/** Exponential backoff with ±20% jitter, capped. */
export class Backoff {
  failures = 0;
  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}
  next(): number {
    this.failures += 1;
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * this.opts.factor ** (this.failures - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
  reset(): void {
    this.failures = 0;
  }
}

/**
 * Runs `run` serially: at start, on the schedule, on (debounced) triggers, and after failures
 * with exponential backoff. A trigger that arrives during a run causes exactly one more run.
 * Scheduled ticks that fall inside a backoff window are skipped; a webhook is not.
 */
export class ReconcileLoop {
  private timer?: NodeJS.Timeout;
  private debounceTimer?: NodeJS.Timeout;
  private cronJob?: CronJob;
  private running?: Promise<void>;
  private pending?: Trigger;
  private retryNotBefore = 0;
  private lastTriggerAt = -Infinity;
  private stopped = true;
  private readonly backoff: Backoff;

  constructor(
    private readonly opts: {
      schedule: Schedule;
      run: (trigger: Trigger) => Promise<RunOutcome>;
      backoff?: BackoffOptions;
      debounceMs?: number;
      onError?: (err: unknown) => void;
    },
  ) {
    validateSchedule(opts.schedule);
    this.backoff = new Backoff(opts.backoff ?? DEFAULT_BACKOFF);
  }

  get consecutiveFailures(): number {
    return this.backoff.failures;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const s = this.opts.schedule;
    if ('cron' in s) {
      this.cronJob = CronJob.from({
        cronTime: s.cron,
        onTick: () => {
          if (Date.now() >= this.retryNotBefore) this.request('schedule');
        },
        start: true,
      });
    }
    this.request('startup');
  }

  /**
   * Asks for a run. The first trigger after a quiet period runs at once (a single push should not
   * wait out a window); triggers that follow within `debounceMs` are merged into one trailing run.
   * Webhooks and manual triggers bypass a backoff window.
   */
  trigger(reason: Trigger = 'manual'): void {
    if (this.stopped) return;
    const now = Date.now();
    const quiet = now - this.lastTriggerAt >= (this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.lastTriggerAt = now;
    if (this.debounceTimer) return;
    if (quiet) {
      // A run in flight turns this into exactly one more run (see request).
      this.request(reason);
      return;
    }
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.request(reason);
    }, this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  /** Resolves when no run is in flight or pending. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
    await this.cronJob?.stop();
    this.pending = undefined;
    await this.idle();
  }

  private request(reason: Trigger): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending = this.pending ?? reason;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.runOnce(reason).finally(() => {
      this.running = undefined;
      const next = this.pending;
      this.pending = undefined;
      if (next && !this.stopped) this.request(next);
    });
  }

  private async runOnce(reason: Trigger): Promise<void> {
    let outcome: RunOutcome;
    try {
      outcome = await this.opts.run(reason);
    } catch (err) {
      this.opts.onError?.(err);
      outcome = { result: 'transient' };
    }
    if (this.stopped) return;
    let delay: number | undefined;
    if (outcome.result === 'transient') {
      delay = this.backoff.next();
      this.retryNotBefore = Date.now() + delay;
      this.arm(delay, 'retry');
      return;
    }
    this.backoff.reset();
    this.retryNotBefore = 0;
    if (outcome.result === 'waiting') delay = outcome.requeueAfterMs;
    const s = this.opts.schedule;
    if ('intervalMs' in s) delay = Math.min(delay ?? s.intervalMs, s.intervalMs);
    if (delay !== undefined) this.arm(delay, delay === outcome.requeueAfterMs ? 'retry' : 'schedule');
  }

  private arm(delayMs: number, reason: Trigger): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.request(reason), delayMs);
  }
}
