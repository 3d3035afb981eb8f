import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { verifyCommitSignature } from '../../src/reconciler/commit-signature.js';

const exec = promisify(execFile);

/** Real keys, real `git commit -S` (SSH and OpenPGP), verified by the system's ssh-keygen and gpgv. */
describe('commit signature verification', () => {
  let root: string;
  let repo: string;
  let gnupgHome: string;
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    GNUPGHOME: gnupgHome,
    GIT_AUTHOR_NAME: 'Dev',
    GIT_AUTHOR_EMAIL: 'dev@example.com',
    GIT_COMMITTER_NAME: 'Dev',
    GIT_COMMITTER_EMAIL: 'dev@example.com',
  });
  const git = async (...args: string[]): Promise<string> => (await exec('git', ['-C', repo, ...args], { env: env() })).stdout.trim();
  let allowedSigners: string;
  let keyring: string;
  let trustedKey: string;
  let strangerKey: string;
  let gpgFingerprint: string;

  const commit = async (message: string, ...signing: string[]): Promise<string> => {
    await writeFile(join(repo, 'file.txt'), `${message}\n`);
    await git('add', 'file.txt');
    await git(...signing, 'commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  const sshSigned = (key: string) => ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key}`, '-c', 'commit.gpgsign=true'];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'trellis-sign-'));
    repo = join(root, 'repo');
    gnupgHome = join(root, 'gnupg');
    await exec('mkdir', ['-m', '700', gnupgHome]);
    await exec('git', ['init', '-q', '-b', 'main', repo]);
    trustedKey = join(root, 'trusted');
    strangerKey = join(root, 'stranger');
    for (const key of [trustedKey, strangerKey]) await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', key]);
    allowedSigners = join(root, 'allowed_signers');
    await writeFile(allowedSigners, `release-bot@example.com ${(await readFile(`${trustedKey}.pub`, 'utf8')).trim()}\n`);
    await exec('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', 'Trellis Release <release@example.com>', 'ed25519', 'sign', 'never'], { env: env() });
    const listed = (await exec('gpg', ['--batch', '--with-colons', '--list-secret-keys'], { env: env() })).stdout;
    gpgFingerprint = /^fpr:+([0-9A-F]+):/m.exec(listed)![1];
    keyring = join(root, 'trusted.gpg');
    await exec('gpg', ['--batch', '--output', keyring, '--export', gpgFingerprint], { env: env() });
  }, 60_000);

  afterAll(async () => {
    await exec('gpgconf', ['--kill', 'all'], { env: env() }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  test('an SSH-signed commit by an allowed signer verifies and names the principal', async () => {
    const oid = await commit('signed by the release bot', ...sshSigned(trustedKey));
    expect(await verifyCommitSignature(join(repo, '.git'), oid, { sshAllowedSignersFile: allowedSigners })).toEqual({ ok: true, format: 'ssh', signer: 'release-bot@example.com' });
  });

  test('an unsigned commit is refused', async () => {
    const oid = await commit('unsigned');
    const verdict = await verifyCommitSignature(join(repo, '.git'), oid, { sshAllowedSignersFile: allowedSigners });
    expect(verdict).toEqual({ ok: false, reason: `commit ${oid.slice(0, 12)} is not signed` });
  });

  test('a commit signed by a key that is not allowed is refused', async () => {
    const oid = await commit('signed by a stranger', ...sshSigned(strangerKey));
    const verdict = await verifyCommitSignature(join(repo, '.git'), oid, { sshAllowedSignersFile: allowedSigners });
    expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(/is signed by a key that is not in .*allowed_signers/) });
  });

  test('a commit whose content was changed after signing is refused', async () => {
    const oid = await commit('the original content', ...sshSigned(trustedKey));
    const raw = await git('cat-file', 'commit', oid);
    const forged = raw.replace('the original content', 'a forged message');
    const forgedFile = join(root, 'forged-commit');
    await writeFile(forgedFile, `${forged}\n`);
    const forgedOid = await git('hash-object', '-t', 'commit', '-w', forgedFile);
    expect(forgedOid).not.toBe(oid);
    const verdict = await verifyCommitSignature(join(repo, '.git'), forgedOid, { sshAllowedSignersFile: allowedSigners });
    expect(verdict).toEqual({ ok: false, reason: expect.stringMatching(/bad SSH signature/) });
  });

  test('an OpenPGP-signed commit verifies against the keyring, and not without it', async () => {
    const oid = await commit('gpg signed', '-c', `user.signingkey=${gpgFingerprint}`, '-c', 'commit.gpgsign=true');
    const verdict = await verifyCommitSignature(join(repo, '.git'), oid, { gpgKeyringFile: keyring });
    expect(verdict).toEqual({ ok: true, format: 'gpg', signer: expect.stringContaining('Trellis Release <release@example.com>') });
    expect(await verifyCommitSignature(join(repo, '.git'), oid, { sshAllowedSignersFile: allowedSigners })).toEqual({ ok: false, reason: expect.stringMatching(/GPG-signed but no keyring/) });
    const otherKeyring = join(root, 'empty.gpg');
    await writeFile(otherKeyring, Buffer.alloc(0));
    expect(await verifyCommitSignature(join(repo, '.git'), oid, { gpgKeyringFile: otherKeyring })).toEqual({ ok: false, reason: expect.stringMatching(/not in the keyring/) });
  });
});
