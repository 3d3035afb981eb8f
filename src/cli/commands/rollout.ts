import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { commitToWorkTree, setFleetAbort, setFleetSuspended } from '../../reconciler/rollout/index.js';
import { printRolloutStatus } from './rollout-status.js';

/** GitOps first: pause, resume and abort are commits to trellis.yaml, so the decision is in history. */
async function commitFleetEdit(repo: string, edit: (text: string) => string, message: string): Promise<void> {
  const dir = resolve(repo);
  const before = await readFile(join(dir, 'trellis.yaml'), 'utf8');
  const after = edit(before);
  if (after === before) {
    console.log('trellis.yaml already says so; nothing to commit');
    return;
  }
  const sha = await commitToWorkTree({ dir, changes: new Map([['trellis.yaml', after]]), message });
  console.log(`committed ${sha.slice(0, 12)}: ${message.split('\n')[0]}`);
  console.log('next: git push, and the operator applies it on its next poll or webhook');
}

export function register(program: Command): void {
  const rollout = program.command('rollout').description('watch and steer rollouts');
  rollout
    .command('status')
    .description('stages × clusters: versions, canary step, analysis, drift')
    .option('--operator <url>', 'operator API', process.env.TRELLIS_OPERATOR ?? 'http://127.0.0.1:15014')
    .option('-w, --watch', 'keep refreshing')
    .option('-o, --output <format>', 'table | json', 'table')
    .action(async (opts: { operator: string; watch?: boolean; output: string }) => printRolloutStatus(opts));
  rollout
    .command('pause')
    .description('commit spec.suspend: true (every cluster holds where it is)')
    .option('--repo <dir>', 'the config repository clone', '.')
    .option('-m, --message <why>', 'why, for the commit message')
    .action((opts: { repo: string; message?: string }) =>
      commitFleetEdit(opts.repo, (t) => setFleetSuspended(t, true), `Pause rollouts${opts.message ? `: ${opts.message}` : ''}`),
    );
  rollout
    .command('resume')
    .description('commit the removal of spec.suspend')
    .option('--repo <dir>', 'the config repository clone', '.')
    .action((opts: { repo: string }) => commitFleetEdit(opts.repo, (t) => setFleetSuspended(t, false), 'Resume rollouts'));
  rollout
    .command('abort <version>')
    .description('commit an abort marker: clusters rolling out <version> return to their stable version')
    .option('--repo <dir>', 'the config repository clone', '.')
    .option('-m, --message <why>', 'why, for the commit message')
    .action((version: string, opts: { repo: string; message?: string }) =>
      commitFleetEdit(opts.repo, (t) => setFleetAbort(t, version), `Abort rollout of ${version}${opts.message ? `: ${opts.message}` : ''}`),
    );
}
