import { setTimeout as delay } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { formatClusterLine, type RolloutStatusView } from '../../reconciler/rollout/view.js';

async function fetchStatus(operator: string): Promise<RolloutStatusView> {
  const res = await fetch(new URL('/v1/rollout', operator), { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`operator ${operator} answered ${res.status} for /v1/rollout`);
  return (await res.json()) as RolloutStatusView;
}

function plainLines(view: RolloutStatusView): string[] {
  const head = `commit ${view.commit?.slice(0, 12) ?? '-'}${view.suspended ? ' (suspended)' : ''} at ${view.generatedAt}`;
  return [head, ...view.stages.flatMap((s) => s.clusters.map((c) => formatClusterLine(s.name, c)))];
}

/**
 * `trellis rollout status`: plain lines when stdout is not a terminal (or once), a live view with
 * one progress bar per cluster (cli-progress) with `--watch` in a terminal, raw JSON with `-o json`.
 */
export async function printRolloutStatus(opts: { operator: string; watch?: boolean; output: string }): Promise<void> {
  if (opts.output === 'json') {
    console.log(JSON.stringify(await fetchStatus(opts.operator), null, 2));
    return;
  }
  if (!opts.watch || !process.stdout.isTTY) {
    do {
      for (const line of plainLines(await fetchStatus(opts.operator))) console.log(line);
      if (opts.watch) await delay(2000);
    } while (opts.watch);
    return;
  }
  const bars = new cliProgress.MultiBar(
    { format: ' {stage} {cluster} [{bar}] {percentage}% {phase} {versions} {analysis}', barsize: 20, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  const byCluster = new Map<string, cliProgress.SingleBar>();
  const stop = () => {
    bars.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  for (;;) {
    const view = await fetchStatus(opts.operator);
    for (const stage of view.stages) {
      for (const c of stage.clusters) {
        const payload = {
          stage: stage.name.padEnd(8),
          cluster: c.cluster.padEnd(8),
          phase: c.phase.padEnd(11),
          versions: c.targetVersion ? `${c.stableVersion}→${c.targetVersion}` : c.stableVersion,
          analysis: c.lastAnalysis ? `success ${c.lastAnalysis.successRate ?? '-'}% p99 ${c.lastAnalysis.p99LatencyMs ?? '-'}ms` : '',
        };
        const value = c.targetVersion ? c.weight : 100;
        const bar = byCluster.get(c.cluster);
        if (bar) bar.update(value, payload);
        else byCluster.set(c.cluster, bars.create(100, value, payload));
      }
    }
    await delay(1000);
  }
}
