/**
 * Open-loop (fixed-rate) HTTP/1.1 load generator, the method wrk2 and Istio's latency benchmarks
 * use: every connection sends its requests at fixed scheduled times, whether or not the previous
 * answer was quick, and each latency is measured from the SCHEDULED send time. A stall of the
 * target therefore counts fully for every request it delays (no coordinated omission), where a
 * closed-loop tool (wrk, autocannon) simply sends fewer requests while the target stalls.
 *
 *   node open-loop.js --port P [--connections 10] [--rate 1000] [--seconds 5] [--warmup 1]
 *                     [--header 'name: value']...
 *
 * Connection i sends its k-th request at start + (i / connections + k) × connections / rate ms:
 * the sends are spread evenly across connections. A request whose time comes while its
 * connection still waits for the previous answer leaves as soon as that answer is in (HTTP/1.1
 * has one request in flight per connection), and its latency still counts from its scheduled time.
 * Every sample is kept (no histogram buckets) and percentiles are exact (nearest rank). Prints one
 * JSON line.
 *
 * The generator's own timer lateness (Node timers have 1 ms resolution, ~0.7 ms late at the median)
 * is not the target's doing: a request whose connection was free at its scheduled time counts from
 * when it actually left; one held back by the previous answer counts from its scheduled time. The
 * lateness is printed (`timerLag`) to show how far the schedule was kept. `service` is the plain
 * send-to-answer time (what a closed-loop tool reports), for comparison.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

interface Args {
  port: number;
  connections: number;
  rate: number;
  seconds: number;
  warmup: number;
  headers: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { port: 0, connections: 10, rate: 1000, seconds: 5, warmup: 1, headers: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--port': a.port = Number(v); i++; break;
      case '--connections': a.connections = Number(v); i++; break;
      case '--rate': a.rate = Number(v); i++; break;
      case '--seconds': a.seconds = Number(v); i++; break;
      case '--warmup': a.warmup = Number(v); i++; break;
      case '--header': a.headers.push(v); i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!(a.port > 0) || !(a.connections > 0) || !(a.rate > 0) || !(a.seconds > 0)) throw new Error('need --port, and positive --connections, --rate, --seconds');
  return a;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Exact percentile (nearest rank) of ascending-sorted samples. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

class Samples {
  private data: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = v;
  }
  summary(): Record<string, number> {
    const s = this.data.slice(0, this.length).sort();
    const r = (x: number): number => Math.round(x * 1000) / 1000;
    return { p50: r(percentile(s, 0.5)), p90: r(percentile(s, 0.9)), p99: r(percentile(s, 0.99)), p999: r(percentile(s, 0.999)), max: r(s[s.length - 1] ?? NaN) };
  }
}

async function run(a: Args): Promise<void> {
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: svc\r\n${a.headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'latin1');
  const interval = (a.connections * 1000) / a.rate; // ms between two sends of one connection
  const perConnection = Math.floor(((a.warmup + a.seconds) * 1000) / interval);
  const expected = perConnection * a.connections;
  const corrected = new Samples(expected);
  const service = new Samples(expected);
  const timerLag = new Samples(expected);
  let errors = 0;
  let non2xx = 0;
  let completed = 0;
  let finishedConnections = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  // Connect everything first; the schedule starts once every connection is up.
  const sockets = await Promise.all(
    Array.from({ length: a.connections }, () => new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: a.port });
      s.setNoDelay(true);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    })),
  );
  const start = performance.now() + 20;
  const measureFrom = start + a.warmup * 1000;

  sockets.forEach((socket, i) => {
    let k = 0;
    let scheduled = 0;
    let sentAt = 0;
    /** Where this request's latency counts from (see `send`). */
    let origin = 0;
    let waiting = false;
    let pending: Buffer | undefined;
    let need = -1; // total bytes of the current response once its head is parsed
    let status = 0;
    let timer: NodeJS.Timeout | undefined;

    const dueOf = (n: number): number => start + (i / a.connections + n) * interval;

    const send = (fromTimer: boolean): void => {
      timer = undefined;
      scheduled = dueOf(k);
      sentAt = performance.now();
      if (sentAt < scheduled) {
        // Node timers run on libuv's cached millisecond clock and can fire up to ~1 ms early:
        // never send before the scheduled time (the second timer fires late instead, measured).
        timer = setTimeout(send, scheduled - sentAt, true);
        return;
      }
      // Sent by its timer, the connection was free at the scheduled time: any lateness is the
      // generator's own timer, not the target's doing, so latency counts from the actual send.
      // Sent when the previous answer came in, the target held it up: count from the schedule.
      origin = fromTimer ? sentAt : scheduled;
      if (fromTimer && scheduled >= measureFrom) timerLag.push(sentAt - scheduled);
      waiting = true;
      socket.write(request);
    };
    const next = (): void => {
      k++;
      if (k >= perConnection) {
        socket.end();
        if (++finishedConnections === a.connections) resolveDone();
        return;
      }
      const due = dueOf(k);
      const now = performance.now();
      if (due <= now) send(false);
      else timer = setTimeout(send, due - now, true);
    };
    const answered = (now: number): void => {
      waiting = false;
      completed++;
      if (status < 200 || status >= 300) non2xx++;
      if (scheduled >= measureFrom) {
        corrected.push(now - origin);
        service.push(now - sentAt);
      }
      next();
    };

    socket.on('data', (d: Buffer) => {
      const now = performance.now();
      let buf = pending ? Buffer.concat([pending, d]) : d;
      pending = undefined;
      while (buf.length > 0) {
        if (!waiting) {
          errors++; // bytes nobody asked for
          socket.destroy();
          return;
        }
        if (need < 0) {
          const end = buf.indexOf(CRLFCRLF);
          if (end < 0) {
            pending = buf;
            return;
          }
          const head = buf.toString('latin1', 0, end);
          status = Number(head.slice(9, 12));
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!cl) {
            errors++; // this generator reads Content-Length bodies only
            socket.destroy();
            return;
          }
          need = end + 4 + Number(cl[1]);
        }
        if (buf.length < need) {
          pending = buf;
          return;
        }
        const rest = buf.length > need ? buf.subarray(need) : undefined;
        need = -1;
        answered(now);
        buf = rest ?? Buffer.alloc(0);
      }
    });
    const fail = (): void => {
      if (timer) clearTimeout(timer);
      if (k < perConnection) {
        errors++;
        k = perConnection;
        if (++finishedConnections === a.connections) resolveDone();
      }
    };
    socket.on('error', fail);
    socket.on('close', fail);
    timer = setTimeout(send, Math.max(0, dueOf(0) - performance.now()), true);
  });

  const deadline = setTimeout(resolveDone, (a.warmup + a.seconds) * 1000 + 5000);
  await done;
  clearTimeout(deadline);
  for (const s of sockets) s.destroy();
  const measured = corrected.length;
  process.stdout.write(
    `${JSON.stringify({
      connections: a.connections,
      rate: a.rate,
      seconds: a.seconds,
      requests: measured,
      achievedRate: Math.round(measured / a.seconds),
      unfinished: expected - completed,
      errors,
      non2xx,
      corrected: corrected.summary(),
      service: service.summary(),
      timerLag: timerLag.summary(),
    })}\n`,
  );
}

await run(parseArgs(process.argv.slice(2)));
process.exit(0);
