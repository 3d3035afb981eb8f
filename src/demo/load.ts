import http from 'node:http';

export interface LoadCounters {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by status (0 = connection error or reset). */
  byStatus: Record<number, number>;
  /** Failures that were the generator's own timeout (counted in `failed`, not in `byStatus`). */
  timedOut: number;
}

export interface LoadGenerator {
  counters(): LoadCounters;
  /** Counters since the mark was taken. */
  mark(): () => LoadCounters;
  stop(): Promise<void>;
}

/**
 * A steady, bounded request loop against an ingress gateway: `rps` requests per second, a tenth
 * of them as the test user jason (bookinfo's `end-user` header), each with a timeout.
 */
export function startLoad(opts: { url: string; host: string; path: string; rps: number; timeoutMs?: number }): LoadGenerator {
  const c: LoadCounters = { sent: 0, ok: 0, failed: 0, byStatus: {}, timedOut: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const inflight = new Set<Promise<void>>();
  const target = new URL(opts.path, opts.url);
  let n = 0;
  const fail = (status: number) => {
    c.failed += 1;
    c.byStatus[status] = (c.byStatus[status] ?? 0) + 1;
  };
  const one = (): Promise<void> =>
    new Promise<void>((resolve) => {
      c.sent += 1;
      const headers: Record<string, string> = { host: opts.host };
      if (n++ % 10 === 0) headers['end-user'] = 'jason';
      const req = http.request(target, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if ((res.statusCode ?? 0) < 500) c.ok += 1;
          else fail(res.statusCode ?? 0);
          resolve();
        });
        res.on('error', () => {
          fail(0);
          resolve();
        });
      });
      let timedOut = false;
      req.setTimeout(opts.timeoutMs ?? 5000, () => {
        timedOut = true;
        req.destroy(new Error('timeout'));
      });
      req.on('error', () => {
        if (timedOut) {
          c.failed += 1;
          c.timedOut += 1;
        } else fail(0);
        resolve();
      });
      req.end();
    });
  const timer = setInterval(() => {
    const p = one().finally(() => inflight.delete(p));
    inflight.add(p);
  }, Math.max(1, Math.round(1000 / opts.rps)));
  return {
    counters: () => ({ ...c, byStatus: { ...c.byStatus } }),
    mark() {
      const start = { ...c, byStatus: { ...c.byStatus } };
      return () => ({
        sent: c.sent - start.sent,
        ok: c.ok - start.ok,
        failed: c.failed - start.failed,
        timedOut: c.timedOut - start.timedOut,
        byStatus: Object.fromEntries(Object.entries(c.byStatus).map(([k, v]) => [k, v - (start.byStatus[Number(k)] ?? 0)])),
      });
    },
    async stop() {
      clearInterval(timer);
      await Promise.all(inflight);
      agent.destroy();
    },
  };
}
