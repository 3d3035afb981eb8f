import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PROJECT_ROOT } from '../../helpers/shared.js';
import { createAccessLogger, type AccessLogEntry } from '../../../src/proxy/telemetry/index.js';

/** A pino destination that keeps every written line. */
function captureStream(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function entry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    start_time: '2026-11-22T20:00:00.123Z',
    method: 'GET',
    path: '/reviews/0?x=1',
    protocol: 'HTTP/1.1',
    response_code: 200,
    response_flags: '-',
    bytes_received: 0,
    bytes_sent: 295,
    duration: 4,
    upstream_host: '10.1.0.7:9080',
    upstream_cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
    x_forwarded_for: null,
    user_agent: 'curl/8.0',
    request_id: '9c5a2b8e-3d1f-4a6b-8a0e-1f2b3c4d5e6f',
    authority: 'reviews:9080',
    route_name: 'default/reviews/0',
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    ...over,
  };
}

const REQUIRED_FIELDS = [
  'start_time',
  'method',
  'path',
  'protocol',
  'response_code',
  'response_flags',
  'bytes_received',
  'bytes_sent',
  'duration',
  'upstream_host',
  'upstream_cluster',
  'x_forwarded_for',
  'user_agent',
  'request_id',
  'authority',
  'route_name',
  'trace_id',
];

describe('access logger', () => {
  it('writes one pino JSON line per request with Istio JSON access-log fields', () => {
    const cap = captureStream();
    const logger = createAccessLogger({ enabled: true, encoding: 'JSON', destination: cap.stream });
    expect(logger.enabled).toBe(true);
    logger.log(entry());
    logger.log(entry({ response_code: 503, response_flags: 'UF', upstream_host: null, path: '/a"b\\c' }));
    logger.flush();
    const lines = cap.lines();
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      for (const f of REQUIRED_FIELDS) expect(line).toHaveProperty(f);
      expect(line.level).toBe(30);
    }
    expect(lines[0]).toMatchObject({
      start_time: '2026-11-22T20:00:00.123Z',
      method: 'GET',
      path: '/reviews/0?x=1',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      bytes_received: 0,
      bytes_sent: 295,
      duration: 4,
      upstream_host: '10.1.0.7:9080',
      upstream_cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
      x_forwarded_for: null,
      user_agent: 'curl/8.0',
      request_id: '9c5a2b8e-3d1f-4a6b-8a0e-1f2b3c4d5e6f',
      authority: 'reviews:9080',
      route_name: 'default/reviews/0',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    expect(lines[1]).toMatchObject({ response_code: 503, response_flags: 'UF', upstream_host: null, path: '/a"b\\c' });
    // No pid/hostname/time noise: start_time is the request's time.
    expect(lines[0]).not.toHaveProperty('pid');
    expect(lines[0]).not.toHaveProperty('hostname');
  });

  it('TEXT encoding puts Envoy’s default text format in msg', () => {
    const cap = captureStream();
    const logger = createAccessLogger({ enabled: true, encoding: 'TEXT', destination: cap.stream });
    logger.log(entry({ x_forwarded_for: '10.0.0.1' }));
    const [line] = cap.lines();
    expect(line.msg).toBe(
      '[2026-11-22T20:00:00.123Z] "GET /reviews/0?x=1 HTTP/1.1" 200 - - - "-" 0 295 4 - "10.0.0.1" "curl/8.0" ' +
        '"9c5a2b8e-3d1f-4a6b-8a0e-1f2b3c4d5e6f" "reviews:9080" "10.1.0.7:9080" ' +
        'outbound|9080|v2|reviews.default.svc.cluster.local - - - - default/reviews/0',
    );
  });

  it('is a noop when disabled: nothing written, and callers can skip building entries', () => {
    const cap = captureStream();
    const logger = createAccessLogger({ enabled: false, encoding: 'JSON', destination: cap.stream });
    expect(logger.enabled).toBe(false);
    logger.log(entry());
    logger.flush();
    expect(cap.lines()).toHaveLength(0);
    // Disabled loggers share one frozen instance: no per-listener allocation.
    expect(createAccessLogger({ enabled: false, encoding: 'TEXT' })).toBe(logger);
  });

  it('writes to stdout by default, every line arriving before the process exits', () => {
    const module = join(PROJECT_ROOT, 'src/proxy/telemetry/index.ts');
    const script = `
      import { createAccessLogger } from ${JSON.stringify(module)};
      const log = createAccessLogger({ enabled: true, encoding: 'JSON' });
      const e = ${JSON.stringify(entry())};
      for (let i = 0; i < 2000; i++) log.log({ ...e, request_id: 'r' + i });
      log.flush();
      process.exit(0);`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 15000,
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const lines = child.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2000);
    expect(lines.map((l) => l.request_id)).toEqual(Array.from({ length: 2000 }, (_, i) => `r${i}`));
  });
});
