import fs from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import git from 'isomorphic-git';
import type { CommitAuthor } from './git-tree.js';
import type { FileChanges } from './plan.js';

/** Who commits from the CLI: the user's git identity when configured, else a Trellis default. */
export async function localAuthor(dir: string): Promise<CommitAuthor> {
  const name = (await git.getConfig({ fs, dir, path: 'user.name' })) as string | undefined;
  const email = (await git.getConfig({ fs, dir, path: 'user.email' })) as string | undefined;
  return { name: name ?? 'trellis', email: email ?? 'trellis@localhost' };
}

/**
 * Writes `changes` into a local clone's work tree and commits them, on a new branch when one is
 * named (created from the current HEAD and checked out). Returns the commit sha.
 */
export async function commitToWorkTree(opts: { dir: string; changes: FileChanges; message: string; newBranch?: string }): Promise<string> {
  const { dir } = opts;
  if (opts.newBranch) {
    const existing = await git.listBranches({ fs, dir });
    if (existing.includes(opts.newBranch)) throw new Error(`branch ${opts.newBranch} already exists`);
    await git.branch({ fs, dir, ref: opts.newBranch, checkout: true });
  }
  for (const [path, text] of opts.changes) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
    await git.add({ fs, dir, filepath: path });
  }
  return git.commit({ fs, dir, message: opts.message, author: await localAuthor(dir) });
}
