import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatDiagnostic } from '../../mesh/object.js';
import { DiskFileSystem } from '../../render/fs.js';
import { OverlayFileSystem } from '../../render/overlay-fs.js';
import { loadRepository } from '../../render/repository.js';
import { commitToWorkTree, planUpgrade } from '../../reconciler/rollout/index.js';

/**
 * `trellis upgrade --from A --to B`: prepares a mesh upgrade as a branch ready for a pull request.
 * The change is planned in memory and the whole repository validated with it before anything is
 * written, so a refused upgrade leaves the clone untouched.
 */
export function register(program: Command): void {
  program
    .command('upgrade')
    .description('create versions/<to> from versions/<from>, point the first stage at it, validate, and commit on a new branch')
    .requiredOption('--from <version>', 'the version the fleet runs now')
    .requiredOption('--to <version>', 'the version to move to')
    .option('--repo <dir>', 'the config repository clone', '.')
    .option('--branch <name>', 'branch to create (default upgrade/<to>)')
    .action(async (opts: { from: string; to: string; repo: string; branch?: string }) => {
      const dir = resolve(opts.repo);
      const base = new DiskFileSystem(dir);
      const current = await loadRepository(base);
      if (current.errors.length > 0) {
        for (const d of current.errors) console.error(formatDiagnostic(d));
        throw new Error('the repository is invalid before the upgrade; fix it first');
      }
      const changes = await planUpgrade(base, current.fleet.spec, opts.from, opts.to);
      const after = await loadRepository(new OverlayFileSystem(base, changes));
      if (after.errors.length > 0) {
        for (const d of after.errors) console.error(formatDiagnostic(d));
        throw new Error(`the upgrade to ${opts.to} does not validate; nothing was written`);
      }
      const branch = opts.branch ?? `upgrade/${opts.to}`;
      const moved = after.clusters.filter((c) => c.version === opts.to).map((c) => c.cluster);
      const sha = await commitToWorkTree({
        dir,
        changes,
        newBranch: branch,
        message: `Upgrade mesh ${opts.from} → ${opts.to} (first stage: ${moved.join(', ')})\n\nCreated by trellis upgrade. versions/${opts.to} is a copy of versions/${opts.from} with spec.tag bumped;\nlater stages follow once this one verifies ${opts.to}.\n`,
      });
      console.log(`branch ${branch} at ${sha.slice(0, 12)}: versions/${opts.to} created; ${moved.join(', ')} now reference it`);
      for (const path of [...changes.keys()].sort()) console.log(`  ${path}`);
      console.log(`next: git push -u origin ${branch}, then open a pull request`);
    });
}
