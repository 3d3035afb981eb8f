import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach } from '@jest/globals';
import { pino } from 'pino';
import type { GitServerFault } from '../../../src/reconciler/git-http-server.js';
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
  opts: Partial<OperatorOptions> & {
    versions?: Record<string, string>;
    serverAuth?: { username: string; password: string };
    /** Serve these files instead of the mini repository, rendered by the product's own loader. */
    files?: Record<string, string>;
  } = {},
): Promise<Harness> {
  const repo = await serveRepo({ files: opts.files ?? miniRepoFiles(opts.versions ?? { dev: '1.15.4', 'prod-us': '1.15.4' }), auth: opts.serverAuth });
  const stateDir = await mkdtemp(join(tmpdir(), 'trellis-op-'));
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const { versions: _v, serverAuth: _a, files, ...rest } = opts;
  const op = new Operator({
    repo: repo.url,
    stateDir,
    schedule: { intervalMs: 250 },
    load: files ? undefined : loadMiniRepo,
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

export type HarnessOptions = Parameters<typeof startHarness>[0];

/**
 * Per-test lifecycle for operator tests (call at the top of a test file): `start()` a harness and
 * make `tmp()` directories inside a test; both are closed and removed after each test.
 */
export function useOperatorHarness(): { start(opts?: HarnessOptions): Promise<Harness>; tmp(): Promise<string> } {
  let current: Harness | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await current?.close();
    current = undefined;
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  return {
    async start(opts) {
      current = await startHarness(opts);
      return current;
    },
    async tmp() {
      const d = await mkdtemp(join(tmpdir(), 'trellis-clone-'));
      dirs.push(d);
      return d;
    },
  };
}

export async function getJson(url: string): Promise<any> {
  return (await fetch(url)).json();
}

/** The operator's `/v1/status` as JSON. */
export function statusJson(h: Harness): Promise<any> {
  return getJson(`${h.op.url}/v1/status`);
}

export function postHook(url: string, body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${url}/hooks/git`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
}

/** Git server faults and the reason and message the operator reports for each. */
export const GIT_FAULTS: Array<{ fault: GitServerFault; reason: string; message: RegExp }> = [
  { fault: 'down', reason: 'GitOperationFailed', message: /ECONNREFUSED|connect/i },
  { fault: '500', reason: 'GitOperationFailed', message: /500/ },
  { fault: 'hang', reason: 'GitOperationTimeout', message: /timed out after 400 ms/ },
  { fault: 'wrong-credentials', reason: 'AuthenticationFailed', message: /401/ },
];
