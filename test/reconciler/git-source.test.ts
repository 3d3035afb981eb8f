import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { GitSource } from '../../src/reconciler/git-source.js';
import { TransientError } from '../../src/reconciler/errors.js';
import { loadGitAuth } from '../../src/reconciler/credentials.js';
import { git, serveRepo, type ServedRepo } from '../helpers/git-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-src-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
async function served(opts: Parameters<typeof serveRepo>[0]): Promise<ServedRepo> {
  const repo = await serveRepo(opts);
  cleanups.push(() => repo.close());
  return repo;
}

describe('GitSource over real smart HTTP', () => {
  test('first call fetches; a no-change poll is one small request; a push is fetched and checked out clean', async () => {
    const repo = await served({ files: { 'trellis.yaml': 'v: 1\n', 'dir/a.txt': 'a\n' } });
    const source = new GitSource({ repo: repo.url, cacheDir: await tmp() });
    const first = await source.latest();
    expect(first).toMatchObject({ fetched: true, ref: 'refs/heads/main' });
    expect(first.commit).toBe(await git(repo.workDir, 'rev-parse', 'HEAD'));

    const before = { ...source.wire };
    const serverBefore = repo.server.stats().requests;
    const again = await source.latest();
    expect(again).toMatchObject({ fetched: false, commit: first.commit });
    expect(source.wire.requests - before.requests).toBe(1);
    expect(repo.server.stats().requests - serverBefore).toBe(1);
    expect(source.wire.bytesIn - before.bytesIn).toBeLessThan(1024);

    await source.checkout(first.commit);
    const sha = await repo.commitAndPush({ 'trellis.yaml': 'v: 2\n' }, 'bump');
    const moved = await source.latest();
    expect(moved).toMatchObject({ fetched: true, commit: sha, historyRewritten: false });
    const snap = await source.checkout(sha);
    expect(await readFile(join(snap.dir, 'trellis.yaml'), 'utf8')).toBe('v: 2\n');
    expect(await readFile(join(snap.dir, 'dir/a.txt'), 'utf8')).toBe('a\n');
    expect(snap.dir.endsWith(sha)).toBe(true);
    // Unchanged files are hard-linked from the previous snapshot; changed ones are fresh.
    expect((await stat(join(snap.dir, 'dir/a.txt'))).nlink).toBe(2);
    expect((await stat(join(snap.dir, 'trellis.yaml'))).nlink).toBe(1);
    expect((await source.commitInfo(sha)).message).toBe('bump');

    // Without the probe (a webhook said the branch moved): fetch directly, same answers.
    expect(await source.latest({ probe: false })).toMatchObject({ commit: sha, fetched: false });
    const sha3 = await repo.commitAndPush({ 'trellis.yaml': 'v: 3\n' }, 'bump again');
    expect(await source.latest({ probe: false })).toMatchObject({ commit: sha3, fetched: true });
  });

  test('tracks an annotated tag and a pinned commit', async () => {
    const repo = await served({ files: { 'f.txt': 'one\n' } });
    const c1 = await git(repo.workDir, 'rev-parse', 'HEAD');
    await git(repo.workDir, 'tag', '-a', 'v1', '-m', 'release v1');
    await git(repo.workDir, 'push', '--quiet', 'origin', 'v1');
    await repo.commitAndPush({ 'f.txt': 'two\n' });
    const byTag = new GitSource({ repo: repo.url, ref: { tag: 'v1' }, cacheDir: await tmp() });
    expect((await byTag.latest()).commit).toBe(c1);
    const pinned = new GitSource({ repo: repo.url, ref: { commit: c1 }, cacheDir: await tmp() });
    const rev = await pinned.latest();
    expect(rev.commit).toBe(c1);
    expect(await readFile(join((await pinned.checkout(c1)).dir, 'f.txt'), 'utf8')).toBe('one\n');
    const requests = pinned.wire.requests;
    await pinned.latest();
    expect(pinned.wire.requests).toBe(requests); // a pinned commit already present needs no network
  });

  test('reads a local bare repository directly', async () => {
    const repo = await served({ files: { 'x.yaml': 'x: 1\n' } });
    const source = new GitSource({ repo: repo.bareDir, cacheDir: await tmp() });
    const rev = await source.latest();
    expect(rev.commit).toBe(await git(repo.workDir, 'rev-parse', 'HEAD'));
    expect(await readFile(join((await source.checkout(rev.commit)).dir, 'x.yaml'), 'utf8')).toBe('x: 1\n');
    expect(source.wire.requests).toBe(0);
    // A non-bare checkout works the same (its .git is read).
    const work = new GitSource({ repo: repo.workDir, cacheDir: await tmp() });
    expect((await work.latest()).commit).toBe(rev.commit);
    const sha = await repo.commitAndPush({ 'x.yaml': 'x: 2\n' });
    expect((await work.latest()).commit).toBe(sha);
    expect(await readFile(join((await work.checkout(sha)).dir, 'x.yaml'), 'utf8')).toBe('x: 2\n');
  });

  test('force-push is detected as rewritten history and checked out', async () => {
    const repo = await served({ files: { 'f.txt': 'base\n' } });
    const source = new GitSource({ repo: repo.url, cacheDir: await tmp() });
    await repo.commitAndPush({ 'f.txt': 'doomed\n' });
    await source.latest();
    await git(repo.workDir, 'reset', '--quiet', '--hard', 'HEAD~1');
    await git(repo.workDir, 'commit', '--quiet', '--allow-empty', '-m', 'rewritten');
    await git(repo.workDir, 'push', '--quiet', '--force', 'origin', 'main');
    const sha = await git(repo.workDir, 'rev-parse', 'HEAD');
    const rev = await source.latest();
    expect(rev).toMatchObject({ commit: sha, historyRewritten: true });
    expect(await readFile(join((await source.checkout(sha)).dir, 'f.txt'), 'utf8')).toBe('base\n');
  });

  test('a corrupted clone (objects deleted) is rebuilt from a fresh clone', async () => {
    const repo = await served({ files: { 'f.txt': 'one\n', 'keep.txt': 'k\n' } });
    const cacheDir = await tmp();
    const source = new GitSource({ repo: repo.url, cacheDir });
    await source.latest();
    const packs = join(cacheDir, 'repo.git', 'objects', 'pack');
    for (const f of await readdir(packs)) await rm(join(packs, f));
    const sha = await repo.commitAndPush({ 'f.txt': 'two\n' });
    await source.latest();
    const snap = await source.checkout(sha);
    expect(await readFile(join(snap.dir, 'keep.txt'), 'utf8')).toBe('k\n');
  });

  test('timeouts, 500s and wrong credentials become TransientErrors without secrets', async () => {
    const repo = await served({ files: { 'f.txt': 'x' }, auth: { username: 'bot', password: 'hunter2-secret' } });
    const cacheDir = await tmp();
    const auth = { type: 'basic', username: 'bot', password: 'hunter2-secret' } as const;
    const good = new GitSource({ repo: repo.url, cacheDir, auth });
    await good.latest();

    const bearer = new GitSource({ repo: repo.url, cacheDir: await tmp(), auth: { type: 'bearer', token: 'hunter2-secret' } });
    expect((await bearer.latest()).fetched).toBe(true);

    const wrong = new GitSource({ repo: repo.url.replace('http://', 'http://bot:wrong-pass-xyz@'), cacheDir: await tmp() });
    const authErr = await wrong.latest().catch((e: unknown) => e);
    expect(authErr).toBeInstanceOf(TransientError);
    expect((authErr as TransientError).reason).toBe('AuthenticationFailed');
    expect((authErr as Error).message).not.toContain('wrong-pass-xyz');
    expect(wrong.description).not.toContain('wrong-pass-xyz');

    await repo.server.setFault('hang');
    // A short deadline only against the hanging server: on a busy machine a healthy clone may take longer than 400 ms.
    const impatient = new GitSource({ repo: repo.url, cacheDir, auth, timeoutMs: 400 });
    const hang = await impatient.latest().catch((e: unknown) => e);
    expect((hang as TransientError).reason).toBe('GitOperationTimeout');
    await repo.server.setFault('500');
    const e500 = await good.latest().catch((e: unknown) => e);
    expect((e500 as TransientError).reason).toBe('GitOperationFailed');
    expect((e500 as Error).message).toMatch(/500/);
    expect((e500 as Error).message).not.toContain('hunter2-secret');
    await repo.server.setFault(null);
    expect((await good.latest()).fetched).toBe(false);
  });

  test('credentials load from env and from a file', async () => {
    expect(await loadGitAuth({ env: { TRELLIS_GIT_TOKEN: 't0k' } })).toEqual({ type: 'bearer', token: 't0k' });
    expect(await loadGitAuth({ env: { TRELLIS_GIT_USERNAME: 'u', TRELLIS_GIT_PASSWORD: 'p' } })).toEqual({ type: 'basic', username: 'u', password: 'p' });
    const dir = await tmp();
    const file = join(dir, 'creds.yaml');
    await (await import('node:fs/promises')).writeFile(file, 'username: x-access-token\ntoken: abc123\n');
    expect(await loadGitAuth({ file, env: {} })).toEqual({ type: 'basic', username: 'x-access-token', password: 'abc123' });
    expect(await loadGitAuth({ env: {} })).toBeUndefined();
  });
});
