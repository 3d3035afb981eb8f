import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** The git CLI with a fixed identity and no user or system configuration. */
export const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@example.test',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@example.test',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};

const execFileP = promisify(execFile);

export async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execFileP('git', args, { cwd, env: GIT_ENV })).stdout.trim();
}
