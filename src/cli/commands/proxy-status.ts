import type { Command } from 'commander';
import { DEFAULT_OPERATOR_URL, fetchProxies } from '../../discovery/debug-client.js';
import type { OperatorConnection } from '../../discovery/debug-client.js';
import type { ProxyStatus } from '../../discovery/server.js';

/** Left-aligned columns separated by three spaces, like istioctl's tabwriter output. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export interface OperatorFlags {
  operator?: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

/** Adds --operator/--cacert/--cert/--key to a command. */
export function withOperatorOptions(command: Command): Command {
  return command
    .option('--operator <url>', `operator discovery/debug URL (default: $TRELLIS_OPERATOR or ${DEFAULT_OPERATOR_URL})`)
    .option('--cacert <file>', 'CA certificate (PEM) to verify an https operator')
    .option('--cert <file>', 'client certificate (PEM) when the operator requires mTLS')
    .option('--key <file>', 'client private key (PEM) for --cert');
}

export function operatorConnection(flags: OperatorFlags): OperatorConnection {
  return {
    url: flags.operator ?? process.env.TRELLIS_OPERATOR ?? DEFAULT_OPERATOR_URL,
    caFile: flags.cacert,
    certFile: flags.cert,
    keyFile: flags.key,
  };
}

export function formatProxyStatus(proxies: ProxyStatus[]): string {
  const rows = proxies.map((p) => [p.id, p.cluster, p.meshVersion || '-', p.sync, p.ackedHash ?? '-']);
  return formatTable(['NAME', 'CLUSTER', 'VERSION', 'SYNC', 'HASH'], rows);
}

export function register(program: Command): void {
  withOperatorOptions(
    program
      .command('proxy-status')
      .description('Sync status of every proxy connected to the operator (SYNCED, PENDING, STALE, NACKED, DISCONNECTED)')
      .option('--cluster <name>', 'only proxies of this cluster')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (flags: OperatorFlags & { cluster?: string; output: string }) => {
    const { proxies } = await fetchProxies(operatorConnection(flags));
    const shown = flags.cluster ? proxies.filter((p) => p.cluster === flags.cluster) : proxies;
    if (flags.output === 'json') process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    else if (flags.output === 'table') process.stdout.write(formatProxyStatus(shown));
    else throw new Error(`--output: expected table or json, got ${JSON.stringify(flags.output)}`);
    const nacked = shown.filter((p) => p.sync === 'NACKED');
    for (const p of nacked) process.stderr.write(`${p.id}: NACK ${p.lastNack?.hash ?? ''}: ${p.lastNack?.reason ?? ''}\n`);
  });
}
