import type { Command } from 'commander';
import { pino } from 'pino';
import { startProxy, useSingleThreadedGc, watchConfigFile, type ConfigWatcher } from '../../proxy/index.js';

interface ProxyCliOptions {
  mode: string;
  config?: string;
  stateDir?: string;
  outboundPort?: string;
  inboundPort?: string;
  appPort?: string;
  adminPort: string;
  adminAddress: string;
  bind: string;
  drainMs: string;
  logLevel: string;
  parallelGc?: boolean;
}

function port(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag}: expected a port number 0-65535, got ${JSON.stringify(value)}`);
  return n;
}

/** `trellis proxy`: the data plane (sidecar or gateway), JSON logs, admin API, graceful SIGTERM. */
export function register(program: Command): void {
  program
    .command('proxy')
    .description('run the Trellis proxy (sidecar or gateway)')
    .option('--mode <mode>', 'sidecar | gateway', 'sidecar')
    .option('--config <file>', 'snapshot file (JSON or YAML), re-applied when it changes')
    .option('--state-dir <dir>', 'where the last good snapshot is kept and read back on start')
    .option('--outbound-port <n>', 'sidecar outbound listener port', '15001')
    .option('--inbound-port <n>', 'sidecar inbound listener port', '15006')
    .option('--app-port <n>', 'local application port the inbound listener forwards to')
    .option('--admin-port <n>', 'admin API port (loopback)', '15000')
    .option('--admin-address <addr>', 'admin API bind address', '127.0.0.1')
    .option('--bind <addr>', 'traffic listeners bind address', '0.0.0.0')
    .option('--drain-ms <n>', 'how long SIGTERM waits for in-flight requests', '5000')
    .option('--log-level <level>', 'pino log level', 'info')
    .option('--parallel-gc', "keep V8's parallel scavenges (default: single-threaded GC pauses, shorter on busy hosts)")
    .action(async (o: ProxyCliOptions) => {
      if (!o.parallelGc) useSingleThreadedGc();
      const log = pino({ level: o.logLevel, base: { component: 'proxy' } });
      if (o.mode !== 'sidecar' && o.mode !== 'gateway') throw new Error(`--mode: expected sidecar or gateway, got ${o.mode}`);
      const drainMs = Number(o.drainMs);
      if (!Number.isFinite(drainMs) || drainMs < 0) throw new Error(`--drain-ms: expected milliseconds, got ${o.drainMs}`);
      const sidecar = o.mode === 'sidecar';
      const proxy = await startProxy({
        mode: o.mode,
        outboundPort: sidecar ? port(o.outboundPort, '--outbound-port') : undefined,
        inboundPort: sidecar && o.appPort !== undefined ? port(o.inboundPort, '--inbound-port') : undefined,
        appPort: port(o.appPort, '--app-port'),
        adminPort: port(o.adminPort, '--admin-port'),
        adminAddress: o.adminAddress,
        bindAddress: o.bind,
        stateDir: o.stateDir,
        logger: log,
      });
      let watcher: ConfigWatcher | undefined;
      if (o.config) {
        watcher = watchConfigFile(o.config, (v, source) => proxy.applySnapshot(v, source), {
          logger: log,
          onUnparsable: (reason, source) => proxy.reportRejected(reason, source),
        });
        await watcher.reload();
      }
      log.info({ mode: o.mode, ports: proxy.ports, snapshot: proxy.status().snapshotVersion ?? null }, 'proxy started');
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal, drainMs, inflight: proxy.status().inflight }, 'draining');
        watcher?.close();
        proxy.close({ drainMs }).then(
          () => {
            log.info('proxy stopped');
            log.flush();
            process.exit(0);
          },
          (err: Error) => {
            log.error({ err: err.message }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
