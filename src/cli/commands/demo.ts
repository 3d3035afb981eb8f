import type { Command } from 'commander';
import { pino } from 'pino';
import { readJoinTokenFile, startDemoCluster } from '../../demo/cluster-runtime.js';
import { redactOptions } from '../../security/index.js';
import { runDemo } from '../../demo/run-demo.js';

/** `trellis demo` (the README's main command) and `trellis demo-cluster` (one demo cluster's process). */
export function register(program: Command): void {
  program
    .command('demo')
    .description('run the demo: git server, operator, four bookinfo clusters; upgrade through every stage, then catch and roll back a bad version')
    .option('--keep', 'leave everything running at the end and print where to look')
    .option('--compact', 'short analysis intervals and light load (what the end-to-end test runs)')
    .option('-o, --output <format>', 'text | json (the summary)', 'text')
    .action(async (opts: { keep?: boolean; compact?: boolean; output: string }) => {
      const result = await runDemo({ keep: opts.keep, compact: opts.compact });
      const f = result.figures;
      if (opts.output === 'json') console.log(JSON.stringify(result));
      else {
        console.log('\nsummary');
        for (const c of result.checks) console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(16)} ${c.detail}`);
        console.log(`  requests ${f.totalRequests}, failed ${f.totalFailures}; upgrade ${f.upgradeSeconds ?? '-'}s; rollback ${f.rollbackSeconds ?? '-'}s (${f.rollbackIntervals ?? '-'} intervals); blast radius ${f.blastRadiusPercent ?? '-'}%`);
      }
      if (opts.keep) {
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await result.stop?.();
      }
      process.exitCode = result.ok ? 0 : 1;
    });

  program
    .command('demo-cluster', { hidden: true })
    .description('one demo cluster: bookinfo apps behind Trellis sidecars and an ingress gateway')
    .requiredOption('--cluster <name>')
    .requiredOption('--index <n>', 'cluster number (picks its loopback addresses)')
    .option('--address-block <n>', 'second octet of the loopback block 127.<n>.<index>.*', '77')
    .requiredOption('--discovery <url>', 'operator discovery URL')
    .requiredOption('--state-dir <dir>')
    .option('--bootstrap-url <url>', "the operator's POST /v1/bootstrap URL: proxies get workload certificates and serve mTLS")
    .option('--token-file <file>', "the cluster's join token file (the operator logs where it is); with --bootstrap-url")
    .option('--trust-domain <domain>', 'mesh trust domain', 'cluster.local')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (opts: { cluster: string; index: string; addressBlock: string; discovery: string; stateDir: string; logLevel: string; bootstrapUrl?: string; tokenFile?: string; trustDomain: string }) => {
      const logger = pino({ name: `demo-cluster-${opts.cluster}`, level: opts.logLevel, ...redactOptions });
      if (Boolean(opts.bootstrapUrl) !== Boolean(opts.tokenFile)) throw new Error('--bootstrap-url and --token-file go together');
      const security = opts.bootstrapUrl && opts.tokenFile ? { bootstrapUrl: opts.bootstrapUrl, token: await readJoinTokenFile(opts.tokenFile), trustDomain: opts.trustDomain } : undefined;
      const cluster = await startDemoCluster({ cluster: opts.cluster, index: Number(opts.index), addressBlock: Number(opts.addressBlock), discoveryUrl: opts.discovery, stateDir: opts.stateDir, logger, security });
      logger.info({ cluster: opts.cluster, gatewayUrl: cluster.gatewayUrl }, 'cluster ready');
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      await cluster.stop();
      logger.info('cluster stopped');
    });
}
