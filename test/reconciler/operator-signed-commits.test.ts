import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { git } from '../helpers/git-server.js';
import { getJson, useOperatorHarness, waitFor } from './helpers/operator-harness.js';

const exec = promisify(execFile);
const harness = useOperatorHarness();

/**
 * The operator with a signature policy, against a real smart-HTTP server: commits are signed by the
 * real git CLI with a real SSH key and verified by the system's ssh-keygen.
 */
test('with a signature policy, only commits signed by an allowed key are applied; others are refused whole', async () => {
  const keys = await harness.tmp();
  const key = join(keys, 'release');
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'release', '-f', key]);
  const allowed = join(keys, 'allowed_signers');
  await writeFile(allowed, `release@example.com ${(await readFile(`${key}.pub`, 'utf8')).trim()}\n`);

  const h = await harness.start({ signaturePolicy: { sshAllowedSignersFile: allowed }, statusBranch: false });
  // The served repository's first commit is unsigned: refused, nothing applied (no cluster is known yet).
  const first = await waitFor(async () => {
    const s = await getJson(`${h.op.url}/v1/status`);
    return s.source?.refused ? s : undefined;
  }, 'the unsigned first commit refused');
  expect(first.source.refused.errors).toEqual([expect.stringMatching(/^commit [0-9a-f]{12} is not signed$/)]);
  expect(first.source.history[0]).toMatchObject({ outcome: 'refused', message: expect.stringMatching(/is not signed; no earlier verified commit$/) });
  expect(first.source.lastAppliedCommit).toBeUndefined();
  expect(h.logs.some((l) => l.reason === 'UnverifiedCommit')).toBe(true);
  expect(h.applied).toEqual([]);

  // A signed commit is applied.
  await git(h.repo.workDir, 'config', 'gpg.format', 'ssh');
  await git(h.repo.workDir, 'config', 'user.signingkey', key);
  await git(h.repo.workDir, 'config', 'commit.gpgsign', 'true');
  const signed = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.16.1"\n' }, 'dev: 1.16.1, signed');
  const applied = await waitFor(() => h.applied.find((a) => a.revision.commit === signed), 'the signed commit applied');
  expect(applied.render.clusters.find((c) => c.cluster === 'dev')!.version).toBe('1.16.1');
  expect(h.logs.some((l) => l.msg === 'commit signature verified' && l.signer === 'release@example.com' && l.commit === signed)).toBe(true);

  // An unsigned commit on top is refused; the signed one stays in force.
  await git(h.repo.workDir, 'config', 'commit.gpgsign', 'false');
  const unsigned = await h.repo.commitAndPush({ 'clusters/dev.yaml': 'version: "1.15.4"\n' }, 'dev: back to 1.15.4, unsigned');
  const refused = await waitFor(async () => {
    const s = await getJson(`${h.op.url}/v1/status`);
    return s.source?.refused?.commit === unsigned ? s : undefined;
  }, 'the unsigned commit refused');
  expect(refused.source.lastAppliedCommit).toBe(signed);
  expect(refused.clusters.dev.phase).toBe('InvalidConfig');
  expect(refused.clusters.dev.errors).toEqual([`commit ${unsigned.slice(0, 12)} is not signed`]);
  expect(refused.clusters.dev.conditions.find((c: { type: string }) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'UnverifiedCommit' });
  expect(h.applied.map((a) => a.revision.commit)).toEqual([signed]);
});
