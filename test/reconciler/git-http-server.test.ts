import { execFile } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { GIT_ENV, git, serveRepo, type ServedRepo } from '../helpers/git-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-gs-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function served(opts: Parameters<typeof serveRepo>[0]): Promise<ServedRepo> {
  const repo = await serveRepo(opts);
  cleanups.push(() => repo.close());
  return repo;
}

function gitFails(cwd: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, env: { ...GIT_ENV, GIT_HTTP_LOW_SPEED_LIMIT: '1', GIT_HTTP_LOW_SPEED_TIME: '2' } }, (err, _o, stderr) =>
      err ? resolve(stderr) : reject(new Error(`git ${args.join(' ')} unexpectedly succeeded`)),
    );
  });
}

describe('git smart-HTTP server (git http-backend bridge)', () => {
  test('the git CLI clones, and pushes a gzipped pack that a fresh clone sees', async () => {
    const repo = await served({ files: { 'a.txt': 'one\n' } });
    const dir = await tmp();
    await git(dir, 'clone', '--quiet', repo.url, 'c1');
    expect(await readFile(join(dir, 'c1', 'a.txt'), 'utf8')).toBe('one\n');

    // A large file: a real multi-chunk push through the bridge (the bridge inflates gzip bodies when the CLI sends them).
    const big = 'x'.repeat(200_000) + '\n';
    const sha = await repo.commitAndPush({ 'big.txt': big, 'a.txt': 'two\n' }, 'second');
    await git(dir, 'clone', '--quiet', repo.url, 'c2');
    expect(await git(join(dir, 'c2'), 'rev-parse', 'HEAD')).toBe(sha);
    expect(await readFile(join(dir, 'c2', 'big.txt'), 'utf8')).toBe(big);
    const stats = repo.server.stats();
    expect(stats.byService['git-receive-pack']).toBeGreaterThan(0);
    expect(stats.byService['git-upload-pack']).toBeGreaterThan(0);
  });

  test('basic auth is enforced; right credentials work', async () => {
    const repo = await served({ files: { 'a.txt': 'x' }, auth: { username: 'bot', password: 's3cret' } });
    const dir = await tmp();
    const stderr = await gitFails(dir, 'clone', '--quiet', repo.url, 'no-auth');
    expect(stderr).toMatch(/Authentication failed|could not read Username|401/);
    const u = new URL(repo.url);
    u.username = 'bot';
    u.password = 's3cret';
    await git(dir, 'clone', '--quiet', u.toString(), 'ok');
    expect(await git(join(dir, 'ok'), 'rev-parse', 'HEAD')).toMatch(/^[0-9a-f]{40}$/);
  });

  test('faults: 500, wrong-credentials, down (refused), hang; clearing restores service', async () => {
    const repo = await served({ files: { 'a.txt': 'x' } });
    const dir = await tmp();
    await repo.server.setFault('500');
    expect(await gitFails(dir, 'ls-remote', repo.url)).toMatch(/500/);
    await repo.server.setFault('wrong-credentials');
    expect(await gitFails(dir, 'ls-remote', repo.url)).toMatch(/Authentication failed|could not read Username|401/);
    await repo.server.setFault('down');
    expect(await gitFails(dir, 'ls-remote', repo.url)).toMatch(/Failed to connect|Connection refused|Could not connect/i);
    await repo.server.setFault('hang');
    const hung = await new Promise<string>((resolve) => {
      const req = request(`${repo.url}/info/refs?service=git-upload-pack`, { timeout: 300 }, () => resolve('answered'));
      req.on('timeout', () => {
        req.destroy();
        resolve('timed out');
      });
      req.on('error', () => resolve('timed out'));
      req.end();
    });
    expect(hung).toBe('timed out');
    await repo.server.setFault(null);
    expect(await git(dir, 'ls-remote', repo.url)).toContain('refs/heads/main');
  });
});
