import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { startGitHttpServer, type GitHttpServer, type GitServerAuth } from '../../src/reconciler/git-http-server.js';

export { startGitHttpServer } from '../../src/reconciler/git-http-server.js';
export type { GitHttpServer, GitServerFault, GitServerAuth } from '../../src/reconciler/git-http-server.js';

const execFileP = promisify(execFile);

/** Environment for the git CLI in tests: fixed identity, no user/system config, no prompts. */
export const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test Author',
  GIT_AUTHOR_EMAIL: 'author@example.test',
  GIT_COMMITTER_NAME: 'Test Author',
  GIT_COMMITTER_EMAIL: 'author@example.test',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
};
// The environment may pin git's CA bundle; tests pin it per repository (http.sslCAInfo) instead.
delete GIT_ENV.GIT_SSL_CAINFO;

/** Runs the real git CLI in `cwd`; returns trimmed stdout. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileP('git', args, { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

/** Writes `files` (path → content) into `dir`, creating folders. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

export interface ServedRepo {
  /** Smart-HTTP URL of the bare repository. */
  url: string;
  /** Path of the bare repository on disk. */
  bareDir: string;
  /** A non-bare clone (the "developer" checkout) whose `origin` is `url`, on branch `branch`. */
  workDir: string;
  branch: string;
  server: GitHttpServer;
  /**
   * Writes files, commits them with the git CLI and pushes (over smart HTTP, or straight into the
   * bare repository with `via: 'disk'` while a server fault is active); returns the new commit id.
   */
  commitAndPush(files: Record<string, string>, message?: string, remove?: string[], via?: 'http' | 'disk'): Promise<string>;
  close(): Promise<void>;
}

/**
 * Creates a temporary bare repository from `files` (or from a copy of `fromDir`), committed with
 * the git CLI on `branch`, and serves it over real smart HTTP. `close()` removes everything.
 */
export async function serveRepo(opts: {
  files?: Record<string, string>;
  fromDir?: string;
  branch?: string;
  auth?: GitServerAuth;
  /** Serve HTTPS; `caFile` (the PEM the work tree's git CLI trusts) is usually the certificate itself. */
  tls?: { key: string | Buffer; cert: string | Buffer; caFile: string };
}): Promise<ServedRepo> {
  const branch = opts.branch ?? 'main';
  const tmp = await mkdtemp(join(tmpdir(), 'trellis-git-'));
  const root = join(tmp, 'srv');
  const bareDir = join(root, 'config.git');
  const workDir = join(tmp, 'work');
  await mkdir(root, { recursive: true });
  await git(tmp, 'init', '--quiet', '--bare', '-b', branch, bareDir);
  await git(tmp, 'init', '--quiet', '-b', branch, workDir);
  if (opts.fromDir) await cp(opts.fromDir, workDir, { recursive: true, filter: (src) => !src.includes(`${'/'}.git`) });
  if (opts.files) await writeFiles(workDir, opts.files);
  await git(workDir, 'add', '-A');
  await git(workDir, 'commit', '--quiet', '-m', 'initial config');
  await git(workDir, 'remote', 'add', 'origin', bareDir);
  await git(workDir, 'push', '--quiet', 'origin', branch);
  const server = await startGitHttpServer({ root, auth: opts.auth, tls: opts.tls });
  if (opts.tls) await git(workDir, 'config', 'http.sslCAInfo', opts.tls.caFile);
  const url = server.url('config.git');
  if (opts.auth) {
    const u = new URL(url);
    u.username = opts.auth.username;
    u.password = opts.auth.password;
    await git(workDir, 'remote', 'set-url', 'origin', u.toString());
  } else await git(workDir, 'remote', 'set-url', 'origin', url);

  return {
    url,
    bareDir,
    workDir,
    branch,
    server,
    async commitAndPush(files, message = 'update config', remove = [], via = 'http') {
      await writeFiles(workDir, files);
      for (const path of remove) await git(workDir, 'rm', '--quiet', '-r', path);
      await git(workDir, 'add', '-A');
      await git(workDir, 'commit', '--quiet', '--allow-empty', '-m', message);
      await git(workDir, 'push', '--quiet', via === 'disk' ? bareDir : 'origin', branch);
      return git(workDir, 'rev-parse', 'HEAD');
    },
    async close() {
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
