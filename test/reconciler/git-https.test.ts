import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { TransientError } from '../../src/reconciler/errors.js';
import { GitSource } from '../../src/reconciler/git-source.js';
import { git, serveRepo, type ServedRepo } from '../helpers/git-server.js';
import { startHarness, waitFor } from './helpers/operator-harness.js';
import { miniRepoFiles } from './helpers/mini-repo.js';

const execFileP = promisify(execFile);
let dir: string;
let cert: Buffer;
let key: Buffer;
let repo: ServedRepo;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-git-tls-'));
  await execFileP('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=git.test',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ]);
  [key, cert] = await Promise.all([readFile(join(dir, 'key.pem')), readFile(join(dir, 'cert.pem'))]);
  repo = await serveRepo({ files: miniRepoFiles({ dev: '1.15.4' }), tls: { key, cert, caFile: join(dir, 'cert.pem') } });
});
afterAll(async () => {
  await repo?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('git over HTTPS with a private CA', () => {
  test('trusted with the CA; refused (as a TransientError) without it', async () => {
    expect(repo.url.startsWith('https://127.0.0.1:')).toBe(true);
    const ok = new GitSource({ repo: repo.url, cacheDir: join(dir, 'ok'), ca: cert });
    expect((await ok.latest()).commit).toBe(await git(repo.workDir, 'rev-parse', 'HEAD'));
    const untrusted = new GitSource({ repo: repo.url, cacheDir: join(dir, 'no-ca'), timeoutMs: 5_000 });
    const err = await untrusted.latest().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/self[- ]signed|certificate/i);
  });
});

describe('operator against an HTTPS remote', () => {
  test('applies and pushes status over TLS', async () => {
    // The harness serves its own plain-HTTP repo; point a second operator at the HTTPS one instead.
    const h = await startHarness({ repo: repo.url, gitCa: cert });
    try {
      const head = await git(repo.workDir, 'rev-parse', 'HEAD');
      await waitFor(() => h.applied.find((a) => a.revision.commit === head), 'apply over HTTPS');
      await waitFor(async () => {
        await h.op.publisher.flush();
        return h.op.gitStatusWriter!.lastCommit;
      }, 'status pushed over HTTPS');
      expect(await git(repo.workDir, 'ls-remote', 'origin', 'refs/heads/trellis-status')).toContain(h.op.gitStatusWriter!.lastCommit!);
    } finally {
      await h.close();
    }
  });
});
