import fs from 'node:fs';
import git, { type TreeEntry } from 'isomorphic-git';
import type { FileChanges } from './plan.js';

import { OPERATOR_AUTHOR } from '../git-status-writer.js';

export interface CommitAuthor {
  name: string;
  email: string;
}

/**
 * Writes `changes` on top of `parent`'s tree and creates a commit object, without a working tree
 * (the operator's clone is never checked out in place). Only the changed paths' trees are
 * rewritten; everything else is shared with the parent. Returns the new commit's sha; no ref moves.
 */
export async function commitTreeChanges(opts: {
  gitdir: string;
  parent: string;
  changes: FileChanges;
  message: string;
  author?: CommitAuthor;
  now?: Date;
}): Promise<string> {
  const { gitdir } = opts;
  const { commit } = await git.readCommit({ fs, gitdir, oid: opts.parent });
  const byDir = new Map<string, Map<string, string>>();
  for (const [path, text] of opts.changes) {
    const parts = path.split('/');
    const name = parts.pop() as string;
    const dir = parts.join('/');
    if (!byDir.has(dir)) byDir.set(dir, new Map());
    byDir.get(dir)!.set(name, text);
  }
  const tree = await rewriteTree(gitdir, commit.tree, '', byDir);
  const when = opts.now ?? new Date();
  const author = { ...(opts.author ?? OPERATOR_AUTHOR), timestamp: Math.floor(when.getTime() / 1000), timezoneOffset: 0 };
  return git.writeCommit({ fs, gitdir, commit: { message: opts.message.endsWith('\n') ? opts.message : `${opts.message}\n`, tree, parent: [opts.parent], author, committer: author } });
}

async function rewriteTree(gitdir: string, oid: string | undefined, dir: string, byDir: Map<string, Map<string, string>>): Promise<string> {
  const entries: TreeEntry[] = oid ? (await git.readTree({ fs, gitdir, oid })).tree : [];
  const byName = new Map(entries.map((e) => [e.path, e]));
  for (const [name, text] of byDir.get(dir) ?? []) {
    const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from(text, 'utf8') });
    byName.set(name, { mode: '100644', path: name, oid: blob, type: 'blob' });
  }
  const prefix = dir === '' ? '' : `${dir}/`;
  const childDirs = new Set<string>();
  for (const d of byDir.keys()) {
    if (d !== dir && d.startsWith(prefix)) childDirs.add(d.slice(prefix.length).split('/')[0]);
  }
  for (const child of childDirs) {
    const existing = byName.get(child);
    const sub = await rewriteTree(gitdir, existing?.type === 'tree' ? existing.oid : undefined, `${prefix}${child}`, byDir);
    byName.set(child, { mode: '040000', path: child, oid: sub, type: 'tree' });
  }
  return git.writeTree({ fs, gitdir, tree: [...byName.values()] });
}
