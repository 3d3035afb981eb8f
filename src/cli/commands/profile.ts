import type { Command } from 'commander';
import { stringify } from 'yaml';
import { mergeIstioOperator } from '../../render/istio-operator.js';
import { getProfile, listProfiles, PROFILE_NAMES } from '../../render/profiles/index.js';

/** `trellis profile list|dump`: the IstioOperator profiles Trellis knows (istioctl profile analogue). */
export function register(program: Command): void {
  const profile = program.command('profile').description('list Trellis IstioOperator profiles or dump one');

  profile
    .command('list')
    .description('list the profiles an IstioOperator may name in spec.profile')
    .action(() => {
      const width = Math.max(...PROFILE_NAMES.map((n) => n.length));
      for (const p of listProfiles()) console.log(`${p.name.padEnd(width)}  ${p.description}`);
    });

  profile
    .command('dump')
    .description('print the complete IstioOperator a profile stands for (merged on default, mesh defaults filled)')
    .argument('<name>', 'profile name')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .action((name: string, opts: { output: string }) => {
      if (opts.output !== 'yaml' && opts.output !== 'json') throw new Error(`unknown output format "${opts.output}" (use yaml or json)`);
      const found = getProfile(name);
      if (!found) throw new Error(`unknown profile "${name}" (known: ${PROFILE_NAMES.join(', ')})`);
      const { spec } = mergeIstioOperator(found, {});
      const doc = { apiVersion: 'install.istio.io/v1alpha1', kind: 'IstioOperator', spec };
      process.stdout.write(opts.output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc));
    });
}
