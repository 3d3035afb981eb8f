import { Command, CommanderError } from 'commander';

/**
 * `trellis`: the CLI, operator and proxy entry point. Each subcommand lives in
 * src/cli/commands/<name>.ts. Only the module of the command being run is loaded (loading every
 * command drags the whole project in, which costs seconds of start-up per process); `--help`
 * without a command loads them all.
 */
const COMMAND_MODULES: Record<string, string> = {
  demo: './commands/demo.js',
  'demo-cluster': './commands/demo.js',
  operator: './commands/operator.js',
  profile: './commands/profile.js',
  proxy: './commands/proxy.js',
  'proxy-config': './commands/proxy-config.js',
  'proxy-status': './commands/proxy-status.js',
  render: './commands/render.js',
  rollout: './commands/rollout.js',
  upgrade: './commands/upgrade.js',
  validate: './commands/validate.js',
};

export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('trellis')
    .description('Trellis: a GitOps service-mesh operator with staged canary upgrades across clusters')
    .version('0.1.0')
    .showHelpAfterError();
  const name = argv.slice(2).find((a) => !a.startsWith('-'));
  const module = name ? COMMAND_MODULES[name] : undefined;
  if (module) {
    const { register } = (await import(module)) as { register: (p: Command) => void };
    register(program);
  } else if (!argv.includes('--version') && !argv.includes('-V')) {
    const { registerCommands } = await import('./commands/index.js');
    registerCommands(program);
  }
  return program;
}

try {
  await (await buildProgram()).parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`trellis: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
