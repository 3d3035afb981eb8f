import { Command, CommanderError } from 'commander';
import { registerCommands } from './commands/index.js';

/** `trellis`: the CLI, operator and proxy entry point. Each subcommand lives in src/cli/commands/<name>.ts. */
export function buildProgram(): Command {
  const program = new Command('trellis')
    .description('Trellis: a GitOps service-mesh operator with staged canary upgrades across clusters')
    .version('0.1.0')
    .showHelpAfterError();
  registerCommands(program);
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`trellis: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
