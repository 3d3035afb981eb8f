import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Operator, type OperatorOptions } from '../../../src/reconciler/operator.js';
import type { AppliedRevision } from '../../../src/reconciler/reconciler.js';
import type { RepositoryRender } from '../../../src/render/types.js';
import { serveRepo, type ServedRepo } from '../../helpers/git-server.js';
import { loadMiniRepo, miniRepoFiles } from './mini-repo.js';

/** Polls `cond` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 8_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Harness {
  repo: ServedRepo;
  op: Operator;
  stateDir: string;
  applied: Array<{ render: RepositoryRender; revision: AppliedRevision }>;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A served mini repository and an in-process operator on it (fast timings, JSON logs captured). */
export async function startHarness(
  opts: Partial<OperatorOptions> & { versions?: Record<string, string>; serverAuth?: { username: string; password: string } } = {},
): Promise<Harness> {
  const repo = await serveRepo({ files: miniRepoFiles(opts.versions ?? { dev: '1.15.4', 'prod-us': '1.15.4' }), auth: opts.serverAuth });
  const stateDir = await mkdtemp(join(tmpdir(), 'trellis-op-'));
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const { versions: _v, serverAuth: _a, ...rest } = opts;
  const op = new Operator({
    repo: repo.url,
    stateDir,
    schedule: { intervalMs: 250 },
    load: loadMiniRepo,
    timeoutMs: 1_000,
    backoff: { initialMs: 100, maxMs: 300, factor: 2 },
    webhookDebounceMs: 20,
    statusCoalesceMs: 30,
    leaderElection: 'none',
    logger: pino({ level: 'debug' }, sink),
    ...rest,
  });
  const applied: Harness['applied'] = [];
  op.onApply((render, revision) => {
    applied.push({ render, revision });
  });
  await op.start();
  return {
    repo,
    op,
    stateDir,
    applied,
    logs,
    async close() {
      await op.stop();
      await repo.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
