import type { Command } from 'commander';
import { register as registerDemo } from './demo.js';
import { register as registerOperator } from './operator.js';
import { register as registerProfile } from './profile.js';
import { register as registerProxy } from './proxy.js';
import { register as registerProxyConfig } from './proxy-config.js';
import { register as registerProxyStatus } from './proxy-status.js';
import { register as registerRender } from './render.js';
import { register as registerRollout } from './rollout.js';
import { register as registerUpgrade } from './upgrade.js';
import { register as registerValidate } from './validate.js';

/**
 * Every subcommand registers itself here: one import and one call per command module.
 * Keep the list alphabetical so parallel additions rarely touch the same line.
 */
export function registerCommands(program: Command): void {
  void program;
  registerDemo(program);
  registerOperator(program);
  registerProfile(program);
  registerProxy(program);
  registerProxyConfig(program);
  registerProxyStatus(program);
  registerRender(program);
  registerRollout(program);
  registerUpgrade(program);
  registerValidate(program);
}
