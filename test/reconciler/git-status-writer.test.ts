import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { GitStatusWriter } from '../../src/reconciler/git-status-writer.js';
import { statusCommitMessage, statusLine } from '../../src/reconciler/status-format.js';
import { git, serveRepo, type ServedRepo } from '../helpers/git-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'trellis-gsw-'));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}
async function served(): Promise<ServedRepo> {
  const r = await serveRepo({ files: { 'trellis.yaml': 'x: 1\n' } });
  cleanups.push(() => r.close());
  return r;
}

describe('git status writer', () => {
  test('human commit message from the status', () => {
    expect(
      statusLine('prod-us', { phase: 'Progressing', desiredVersion: '1.16.1', currentVersion: '1.15.4', canary: { step: 2, weight: 50 }, lastAnalysis: { successRate: 99.8, p99LatencyMs: 120, passed: true } }),
    ).toBe('prod-us: 1.16.1 canary 50% healthy — success 99.8%, p99 120 ms');
    expect(statusLine('dev', { phase: 'InvalidConfig', desiredVersion: '1.16.1', errors: ['a', 'b'] })).toBe('dev: 1.16.1 invalid config (2 errors)');
    const msg = statusCommitMessage([
      { cluster: 'dev', status: { phase: 'Healthy', desiredVersion: '1.16.1' } },
      { cluster: 'prod-us', status: { phase: 'Healthy', desiredVersion: '1.15.4' } },
    ]);
    expect(msg).toBe('dev: 1.16.1 healthy (+1 more)\n\ndev: 1.16.1 healthy\nprod-us: 1.15.4 healthy\n');
  });

  test('a push rejected as non-fast-forward is rebuilt on the new tip, keeping the other commit; identical content makes no commit', async () => {
    const repo = await served();
    const other = await tmp();
    let raced = false;
    const writer = new GitStatusWriter({
      repo: repo.url,
      cacheDir: await tmp(),
      beforePublish: async (attempt) => {
        if (attempt !== 1 || raced || !writer.lastCommit) return;
        raced = true;
        // Someone else pushes to the status branch between our fetch and our push.
        await git(other, 'clone', '--quiet', '--branch', 'trellis-status', repo.url, 'st');
        await git(join(other, 'st'), 'commit', '--quiet', '--allow-empty', '-m', 'concurrent writer');
        await git(join(other, 'st'), 'push', '--quiet', 'origin', 'trellis-status');
      },
    });
    const c1 = await writer.writeFiles({ 'dev.yaml': 'a: 1\n' }, 'dev: first');
    expect(c1).toMatch(/^[0-9a-f]{40}$/);
    const c2 = await writer.writeFiles({ 'dev.yaml': 'a: 2\n' }, 'dev: second');
    expect(raced).toBe(true);
    expect(await writer.writeFiles({ 'dev.yaml': 'a: 2\n' }, 'dev: same')).toBeUndefined();

    const clone = await tmp();
    await git(clone, 'clone', '--quiet', '--branch', 'trellis-status', repo.url, 's');
    const dir = join(clone, 's');
    expect(await git(dir, 'rev-parse', 'HEAD')).toBe(c2);
    expect(await git(dir, 'log', '--format=%an|%s')).toBe(['trellis-operator|dev: second', 'Test Author|concurrent writer', 'trellis-operator|dev: first'].join('\n'));
    expect(await readFile(join(dir, 'status', 'dev.yaml'), 'utf8')).toBe('a: 2\n');
    // The status branch is an orphan: the config files are not on it.
    expect(await git(dir, 'ls-files')).toBe('status/dev.yaml');
  });

  test('writes into a local repository directly', async () => {
    const repo = await served();
    const writer = new GitStatusWriter({ repo: repo.bareDir, cacheDir: await tmp() });
    const c = await writer.writeFiles({ 'prod.yaml': 'p: 1\n' }, 'prod: hello');
    expect(await git(repo.bareDir, 'rev-parse', 'refs/heads/trellis-status')).toBe(c);
    expect(await git(repo.bareDir, 'show', 'trellis-status:status/prod.yaml')).toBe('p: 1');
  });
});
