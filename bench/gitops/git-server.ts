/**
 * The git side of bench/gitops in its own process, as in real life: a git host (a real smart-HTTP
 * server, git http-backend behind src/reconciler/git-http-server.ts, serving `<root>/*.git`) and
 * the developer who commits and pushes with the git CLI. Neither is the operator's process: their
 * process spawns must not block the control plane's event loop nor count as its CPU. Driven over IPC.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git } from './git-cli.js';
import { startGitHttpServer, type GitHttpServer, type GitServerStats } from '../../src/reconciler/git-http-server.js';

export type GitServerCommand =
  | { type: 'start'; root: string }
  | { type: 'stats' }
  | { type: 'reset' }
  /** Writes `path` in the work tree, commits everything with `message` and pushes to origin. */
  | { type: 'commit-push'; work: string; path: string; content: string; message: string }
  | { type: 'stop' };
export type GitServerReport =
  | { type: 'started'; baseUrl: string }
  | { type: 'stats'; stats: GitServerStats }
  | { type: 'reset' }
  /** `pushStarted` / `pushReturned`: wall-clock ms (performance.timeOrigin + performance.now()), comparable across processes. */
  | { type: 'pushed'; sha: string; pushStarted: number; pushReturned: number };

const wallNow = () => performance.timeOrigin + performance.now();

let server: GitHttpServer | undefined;

process.on('message', async (msg: GitServerCommand) => {
  if (msg.type === 'start') {
    server = await startGitHttpServer({ root: msg.root });
    process.send?.({ type: 'started', baseUrl: server.baseUrl } satisfies GitServerReport);
  } else if (msg.type === 'stats') {
    process.send?.({ type: 'stats', stats: server!.stats() } satisfies GitServerReport);
  } else if (msg.type === 'reset') {
    server!.resetStats();
    process.send?.({ type: 'reset' } satisfies GitServerReport);
  } else if (msg.type === 'commit-push') {
    await writeFile(join(msg.work, msg.path), msg.content);
    await git(msg.work, 'commit', '--quiet', '-am', msg.message);
    const sha = await git(msg.work, 'rev-parse', 'HEAD');
    const pushStarted = wallNow();
    await git(msg.work, 'push', '--quiet', 'origin', 'main');
    process.send?.({ type: 'pushed', sha, pushStarted, pushReturned: wallNow() } satisfies GitServerReport);
  } else if (msg.type === 'stop') {
    await server?.close();
    process.exit(0);
  }
});

// The bench died (or ended without a stop): do not outlive it.
process.on('disconnect', () => process.exit(0));
