/**
 * The git host of bench/gitops in its own process: a real smart-HTTP server (git http-backend
 * behind src/reconciler/git-http-server.ts) serving `<root>/*.git`. A git host is not the
 * operator's process: its CGI spawns must not block the control plane's event loop. Driven over IPC.
 */
import { startGitHttpServer, type GitHttpServer, type GitServerStats } from '../../src/reconciler/git-http-server.js';

export type GitServerCommand = { type: 'start'; root: string } | { type: 'stats' } | { type: 'reset' } | { type: 'stop' };
export type GitServerReport = { type: 'started'; baseUrl: string } | { type: 'stats'; stats: GitServerStats } | { type: 'reset' };

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
  } else if (msg.type === 'stop') {
    await server?.close();
    process.exit(0);
  }
});
