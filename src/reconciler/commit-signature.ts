import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import git from 'isomorphic-git';

/**
 * Who may sign the commits the operator applies. Either or both: an OpenSSH allowed-signers file
 * (as `git config gpg.ssh.allowedSignersFile` uses) and an OpenPGP public keyring (binary, as
 * `gpg --export KEYID > keyring.gpg` writes). Verification runs the system's own verifiers
 * (`ssh-keygen -Y verify`, `gpgv`) rather than re-implementing signature formats.
 */
export interface SignaturePolicy {
  sshAllowedSignersFile?: string;
  gpgKeyringFile?: string;
}

export type SignatureVerdict =
  | { ok: true; format: 'ssh' | 'gpg'; signer: string }
  | { ok: false; reason: string };

const SSH_ARMOR = '-----BEGIN SSH SIGNATURE-----';
const PGP_ARMOR = '-----BEGIN PGP SIGNATURE-----';
/** The namespace git signs commits in (ssh-keygen -Y sign -n git). */
const SSH_NAMESPACE = 'git';

export function signaturePolicyEnabled(policy: SignaturePolicy | undefined): policy is SignaturePolicy {
  return Boolean(policy?.sshAllowedSignersFile || policy?.gpgKeyringFile);
}

/** Verifies the signature of one commit of a local repository (bare or not) against the policy. */
export async function verifyCommitSignature(gitdir: string, commit: string, policy: SignaturePolicy): Promise<SignatureVerdict> {
  const { object } = await git.readObject({ fs, gitdir, oid: commit, format: 'content' });
  const { payload, signature } = splitSignedCommit(Buffer.from(object as Uint8Array));
  if (!signature) return { ok: false, reason: `commit ${commit.slice(0, 12)} is not signed` };
  const work = await mkdtemp(join(tmpdir(), 'trellis-sig-'));
  try {
    const sigFile = join(work, 'commit.sig');
    await writeFile(sigFile, signature.endsWith('\n') ? signature : `${signature}\n`);
    if (signature.startsWith(SSH_ARMOR)) return await verifySsh(commit, sigFile, payload, policy);
    if (signature.startsWith(PGP_ARMOR)) {
      const payloadFile = join(work, 'commit.payload');
      await writeFile(payloadFile, payload);
      return await verifyGpg(commit, sigFile, payloadFile, policy);
    }
    return { ok: false, reason: `commit ${commit.slice(0, 12)} has a signature of an unknown format` };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function verifySsh(commit: string, sigFile: string, payload: Buffer, policy: SignaturePolicy): Promise<SignatureVerdict> {
  const allowed = policy.sshAllowedSignersFile;
  if (!allowed) return { ok: false, reason: `commit ${commit.slice(0, 12)} is SSH-signed but no allowed-signers file is configured` };
  const found = await run('ssh-keygen', ['-Y', 'find-principals', '-f', allowed, '-s', sigFile]);
  const principal = found.code === 0 ? found.stdout.split('\n')[0]?.trim() : '';
  if (!principal) return { ok: false, reason: `commit ${commit.slice(0, 12)} is signed by a key that is not in ${allowed}` };
  const verified = await run('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', principal, '-n', SSH_NAMESPACE, '-s', sigFile], payload);
  if (verified.code !== 0) {
    return { ok: false, reason: `commit ${commit.slice(0, 12)}: bad SSH signature (${firstLine(verified.stderr || verified.stdout)})` };
  }
  return { ok: true, format: 'ssh', signer: principal };
}

async function verifyGpg(commit: string, sigFile: string, payloadFile: string, policy: SignaturePolicy): Promise<SignatureVerdict> {
  const keyring = policy.gpgKeyringFile;
  if (!keyring) return { ok: false, reason: `commit ${commit.slice(0, 12)} is GPG-signed but no keyring is configured` };
  // gpgv trusts exactly the keys of the keyring given and nothing else (no trust database, no agent).
  const verified = await run('gpgv', ['--status-fd', '1', '--keyring', keyring, sigFile, payloadFile]);
  const good = /^\[GNUPG:\] VALIDSIG ([0-9A-F]+)/m.exec(verified.stdout);
  if (verified.code !== 0 || !good) {
    const why = /^\[GNUPG:\] NO_PUBKEY/m.test(verified.stdout) ? 'signed by a key that is not in the keyring' : `bad GPG signature (${firstLine(verified.stderr)})`;
    return { ok: false, reason: `commit ${commit.slice(0, 12)}: ${why}` };
  }
  const user = /^\[GNUPG:\] GOODSIG [0-9A-F]+ (.+)$/m.exec(verified.stdout)?.[1];
  return { ok: true, format: 'gpg', signer: user ? `${user} (${good[1]})` : good[1] };
}

/**
 * Separates a raw commit object into what was signed and the signature, as git does: the signed
 * payload is the object without its `gpgsig` header (and the header's continuation lines).
 * isomorphic-git's own `payload` keeps SSH signatures in, so it cannot be used here.
 */
export function splitSignedCommit(raw: Buffer): { payload: Buffer; signature?: string } {
  const text = raw.toString('latin1');
  const headerEnd = text.indexOf('\n\n');
  const header = headerEnd < 0 ? text : text.slice(0, headerEnd);
  const kept: string[] = [];
  const signature: string[] = [];
  let inSignature = false;
  for (const line of header.split('\n')) {
    if (inSignature && line.startsWith(' ')) {
      signature.push(line.slice(1));
      continue;
    }
    inSignature = line.startsWith('gpgsig ');
    if (inSignature) signature.push(line.slice('gpgsig '.length));
    else kept.push(line);
  }
  const payload = kept.join('\n') + (headerEnd < 0 ? '' : text.slice(headerEnd));
  return { payload: Buffer.from(payload, 'latin1'), signature: signature.length > 0 ? Buffer.from(signature.join('\n'), 'latin1').toString('utf8') : undefined };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

function run(cmd: string, args: string[], stdin?: Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 10_000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      if (err && code === -1) reject(new Error(`${cmd} could not run: ${err.message}`));
      else resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    // A verifier that exits before reading its input (a refused key) closes the pipe: its exit code
    // tells the outcome, so EPIPE on our side is not an error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin ?? Buffer.alloc(0));
  });
}
