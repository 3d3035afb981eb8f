import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdir, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';

/**
 * Writes the tree of `commit` into `<snapshotsDir>/<commit>`: first into a private temporary
 * directory, then renamed into place, so a half-written checkout is never visible (and never
 * validated). An existing complete snapshot of the same commit is reused.
 */
export async function checkoutSnapshot(opts: { gitdir: string; commit: string; snapshotsDir: string; cache?: object }): Promise<string> {
  const final = join(opts.snapshotsDir, opts.commit);
  if (fs.existsSync(final)) return final;
  await mkdir(opts.snapshotsDir, { recursive: true });
  const tmp = join(opts.snapshotsDir, `.tmp-${opts.commit.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    const { commit } = await git.readCommit({ fs, gitdir: opts.gitdir, oid: opts.commit, cache: opts.cache });
    await writeTreeInto(opts.gitdir, commit.tree, tmp, opts.cache);
    try {
      await rename(tmp, final);
    } catch (err) {
      // Another checkout of the same commit won the race: keep it.
      if (!fs.existsSync(final)) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    return final;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function writeTreeInto(gitdir: string, treeOid: string, dest: string, cache?: object): Promise<void> {
  const { tree } = await git.readTree({ fs, gitdir, oid: treeOid, cache });
  for (const entry of tree) {
    if (entry.path.includes('/') || entry.path === '..' || entry.path === '.' || entry.path === '.git') continue;
    const target = join(dest, entry.path);
    if (entry.type === 'tree') {
      await mkdir(target);
      await writeTreeInto(gitdir, entry.oid, target, cache);
    } else if (entry.type === 'blob') {
      const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
      // Symlinks are written as symlinks; the render file system refuses those that escape the root.
      if (entry.mode === '120000') await symlink(Buffer.from(blob).toString('utf8'), target);
      else await writeFile(target, blob, { mode: entry.mode === '100755' ? 0o755 : 0o644 });
    }
    // type 'commit' (a submodule) has no content here.
  }
}

/** Removes every snapshot except those of `keep` (commit ids), and any leftover temporary dirs. */
export async function pruneSnapshots(snapshotsDir: string, keep: Iterable<string>): Promise<void> {
  const keepSet = new Set(keep);
  let names: string[];
  try {
    names = await readdir(snapshotsDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (keepSet.has(name)) continue;
    await rm(join(snapshotsDir, name), { recursive: true, force: true });
  }
}
