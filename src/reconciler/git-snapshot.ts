import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { link, mkdir, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';

/** Path (repository-relative) → blob id of every regular file in a snapshot. */
export type SnapshotManifest = Map<string, string>;

/** A complete earlier snapshot whose unchanged files can be hard-linked instead of re-read from git. */
export interface SnapshotReuse {
  dir: string;
  manifest: SnapshotManifest;
}

/**
 * Writes the tree of `commit` into `<snapshotsDir>/<commit>`: first into a private temporary
 * directory, then renamed into place, so a half-written checkout is never visible (and never
 * validated). An existing complete snapshot of the same commit is reused. Files identical to
 * `reuse` (same path, same blob) are hard-linked from it: snapshots are read-only by convention.
 */
export async function checkoutSnapshot(opts: {
  gitdir: string;
  commit: string;
  snapshotsDir: string;
  cache?: object;
  reuse?: SnapshotReuse;
}): Promise<{ dir: string; manifest?: SnapshotManifest }> {
  const final = join(opts.snapshotsDir, opts.commit);
  if (fs.existsSync(final)) return { dir: final };
  await mkdir(opts.snapshotsDir, { recursive: true });
  const tmp = join(opts.snapshotsDir, `.tmp-${opts.commit.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  const manifest: SnapshotManifest = new Map();
  try {
    const { commit } = await git.readCommit({ fs, gitdir: opts.gitdir, oid: opts.commit, cache: opts.cache });
    await writeTreeInto({ gitdir: opts.gitdir, cache: opts.cache, reuse: opts.reuse, manifest }, commit.tree, tmp, '');
    try {
      await rename(tmp, final);
    } catch (err) {
      // Another checkout of the same commit won the race: keep it.
      if (!fs.existsSync(final)) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    return { dir: final, manifest };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

interface WriteContext {
  gitdir: string;
  cache?: object;
  reuse?: SnapshotReuse;
  manifest: SnapshotManifest;
}

async function writeTreeInto(ctx: WriteContext, treeOid: string, dest: string, prefix: string): Promise<void> {
  const { tree } = await git.readTree({ fs, gitdir: ctx.gitdir, oid: treeOid, cache: ctx.cache });
  await Promise.all(
    tree.map(async (entry) => {
      if (entry.path.includes('/') || entry.path === '..' || entry.path === '.' || entry.path === '.git') return;
      const target = join(dest, entry.path);
      const rel = prefix ? `${prefix}/${entry.path}` : entry.path;
      if (entry.type === 'tree') {
        await mkdir(target);
        await writeTreeInto(ctx, entry.oid, target, rel);
        return;
      }
      if (entry.type !== 'blob') return; // a submodule ('commit') has no content here
      if (entry.mode === '120000') {
        // Symlinks stay symlinks; the render file system refuses those that escape the root.
        const { blob } = await git.readBlob({ fs, gitdir: ctx.gitdir, oid: entry.oid, cache: ctx.cache });
        await symlink(Buffer.from(blob).toString('utf8'), target);
        return;
      }
      ctx.manifest.set(rel, `${entry.mode}:${entry.oid}`);
      if (ctx.reuse?.manifest.get(rel) === `${entry.mode}:${entry.oid}`) {
        try {
          await link(join(ctx.reuse.dir, rel), target);
          return;
        } catch {
          // The earlier snapshot is gone or differs: read from git.
        }
      }
      const { blob } = await git.readBlob({ fs, gitdir: ctx.gitdir, oid: entry.oid, cache: ctx.cache });
      await writeFile(target, blob, { mode: entry.mode === '100755' ? 0o755 : 0o644 });
    }),
  );
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
  await Promise.all(names.filter((n) => !keepSet.has(n)).map((n) => rm(join(snapshotsDir, n), { recursive: true, force: true })));
}
