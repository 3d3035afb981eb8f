/**
 * Access logs as JSON lines through pino, with Istio's default fields (meshConfig.accessLogEncoding).
 * JSON: one line per request whose keys are Istio's JSON access-log keys. TEXT: one pino line whose
 * `msg` is Envoy's default text format. Disabled: `log` is a noop and `enabled` is false, so callers
 * can skip building the entry at all.
 */
import { pino } from 'pino';

/** One request, with Istio's JSON access-log keys (absent request headers are null, as Envoy writes them). */
export interface AccessLogEntry {
  /** ISO 8601 start time of the request. */
  start_time: string;
  method: string;
  path: string;
  /** `HTTP/1.1`, `HTTP/2`. */
  protocol: string;
  /** 0 when no response was sent. */
  response_code: number;
  /** `-` when none. */
  response_flags: string;
  bytes_received: number;
  bytes_sent: number;
  /** Milliseconds from first request byte to last response byte. */
  duration: number;
  /** `ip:port` of the chosen endpoint, or null. */
  upstream_host: string | null;
  /** Name of the upstream cluster (`outbound|9080|v1|reviews.default.svc.cluster.local`), or null. */
  upstream_cluster: string | null;
  x_forwarded_for: string | null;
  user_agent: string | null;
  request_id: string | null;
  authority: string | null;
  route_name: string | null;
  /** The W3C/B3 trace id, or null. */
  trace_id: string | null;
  response_code_details?: string | null;
  upstream_service_time?: number | null;
  downstream_remote_address?: string | null;
  downstream_local_address?: string | null;
  upstream_transport_failure_reason?: string | null;
}

export interface AccessLogger {
  readonly enabled: boolean;
  log(entry: AccessLogEntry): void;
  /** Flushes buffered lines (call on shutdown). */
  flush(): void;
}

export interface AccessLoggerOptions {
  enabled: boolean;
  encoding: 'TEXT' | 'JSON';
  /** Where the lines go; default stdout through an asynchronous pino destination. */
  destination?: pino.DestinationStream;
}

const NOOP_LOGGER: AccessLogger = Object.freeze({
  enabled: false,
  log(): void {},
  flush(): void {},
});

let stdout: pino.DestinationStream | undefined;

/** One asynchronous stdout destination shared by every logger (loggers are re-made on reconfiguration). */
function stdoutDestination(): pino.DestinationStream {
  stdout ??= pino.destination({ dest: 1, sync: false });
  return stdout;
}

export function createAccessLogger(opts: AccessLoggerOptions): AccessLogger {
  if (!opts.enabled) return NOOP_LOGGER;
  const destination = opts.destination ?? stdoutDestination();
  // No pid/hostname/time bindings: start_time is the time that matters, and bindings cost per line.
  const logger = pino({ base: null, timestamp: false, name: undefined }, destination);
  const flush = (): void => {
    const d = destination as { flushSync?: () => void };
    if (typeof d.flushSync === 'function') {
      try {
        d.flushSync();
      } catch {
        // sonic-boom throws when not yet ready; nothing is buffered then.
      }
    }
  };
  if (opts.encoding === 'JSON') {
    return { enabled: true, log: (e) => logger.info(e), flush };
  }
  return { enabled: true, log: (e) => logger.info(formatEnvoyText(e)), flush };
}

function dash(v: string | number | null | undefined): string | number {
  return v === null || v === undefined || v === '' ? '-' : v;
}

/** Envoy's default access-log text format (the one Istio uses for accessLogEncoding TEXT). */
export function formatEnvoyText(e: AccessLogEntry): string {
  return (
    `[${e.start_time}] "${e.method} ${e.path} ${e.protocol}" ${e.response_code} ${e.response_flags} ` +
    `${dash(e.response_code_details)} - "${dash(e.upstream_transport_failure_reason)}" ` +
    `${e.bytes_received} ${e.bytes_sent} ${e.duration} ${dash(e.upstream_service_time)} ` +
    `"${dash(e.x_forwarded_for)}" "${dash(e.user_agent)}" "${dash(e.request_id)}" "${dash(e.authority)}" ` +
    `"${dash(e.upstream_host)}" ${dash(e.upstream_cluster)} - ${dash(e.downstream_local_address)} ` +
    `${dash(e.downstream_remote_address)} - ${dash(e.route_name)}`
  );
}
