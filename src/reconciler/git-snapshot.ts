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

/** Text of blobs by id: content-addressed, so it is valid for any commit. */
export type BlobTexts = Map<string, string>;

/**
 * Writes the tree of `commit` into `<snapshotsDir>/<commit>`: first into a private temporary
 * directory, then renamed into place, so a half-written checkout is never visible (and never
 * validated). An existing complete snapshot of the same commit is reused. Files identical to
 * `reuse` (same path, same blob) are hard-linked from it: snapshots are read-only by convention.
 *
 * With `texts`, the checkout also returns every file's text (`files`, path → text), so the commit
 * can be rendered from memory; blobs found in `texts.previous` (e.g. the last checkout's) are not
 * read again, and `texts.current` receives this commit's. `files` is left out when the tree holds
 * a symlink or a submodule (only the disk checkout has their semantics).
 */
export async function checkoutSnapshot(opts: {
  gitdir: string;
  commit: string;
  snapshotsDir: string;
  cache?: object;
  reuse?: SnapshotReuse;
  texts?: { previous: BlobTexts; current: BlobTexts };
}): Promise<{ dir: string; manifest?: SnapshotManifest; files?: Map<string, string> }> {
  const final = join(opts.snapshotsDir, opts.commit);
  if (fs.existsSync(final)) return { dir: final };
  await mkdir(opts.snapshotsDir, { recursive: true });
  const tmp = join(opts.snapshotsDir, `.tmp-${opts.commit.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  const manifest: SnapshotManifest = new Map();
  const files = opts.texts ? new Map<string, string>() : undefined;
  const ctx: WriteContext = { gitdir: opts.gitdir, cache: opts.cache, reuse: opts.reuse, manifest, texts: opts.texts, files, onlyRegularFiles: true };
  try {
    const { commit } = await git.readCommit({ fs, gitdir: opts.gitdir, oid: opts.commit, cache: opts.cache });
    await writeTreeInto(ctx, commit.tree, tmp, '');
    try {
      await rename(tmp, final);
    } catch (err) {
      // Another checkout of the same commit won the race: keep it.
      if (!fs.existsSync(final)) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    return { dir: final, manifest, files: ctx.onlyRegularFiles ? files : undefined };
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
  texts?: { previous: BlobTexts; current: BlobTexts };
  files?: Map<string, string>;
  /** Cleared when the tree holds a symlink or a submodule. */
  onlyRegularFiles: boolean;
}

async function readBlobText(ctx: WriteContext, oid: string): Promise<string> {
  const known = ctx.texts?.current.get(oid) ?? ctx.texts?.previous.get(oid);
  if (known !== undefined) return known;
  const { blob } = await git.readBlob({ fs, gitdir: ctx.gitdir, oid, cache: ctx.cache });
  return Buffer.from(blob).toString('utf8');
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
      if (entry.type !== 'blob') {
        ctx.onlyRegularFiles = false;
        return; // a submodule ('commit') has no content here
      }
      if (entry.mode === '120000') {
        ctx.onlyRegularFiles = false;
        // Symlinks stay symlinks; the render file system refuses those that escape the root.
        const { blob } = await git.readBlob({ fs, gitdir: ctx.gitdir, oid: entry.oid, cache: ctx.cache });
        await symlink(Buffer.from(blob).toString('utf8'), target);
        return;
      }
      ctx.manifest.set(rel, `${entry.mode}:${entry.oid}`);
      if (ctx.reuse?.manifest.get(rel) === `${entry.mode}:${entry.oid}`) {
        let linked = false;
        try {
          await link(join(ctx.reuse.dir, rel), target);
          linked = true;
        } catch {
          // The earlier snapshot is gone or differs: read from git.
        }
        if (linked) {
          if (ctx.files) remember(ctx, rel, entry.oid, await readBlobText(ctx, entry.oid));
          return;
        }
      }
      const { blob } = await git.readBlob({ fs, gitdir: ctx.gitdir, oid: entry.oid, cache: ctx.cache });
      await writeFile(target, blob, { mode: entry.mode === '100755' ? 0o755 : 0o644 });
      if (ctx.files) remember(ctx, rel, entry.oid, Buffer.from(blob).toString('utf8'));
    }),
  );
}

function remember(ctx: WriteContext, rel: string, oid: string, text: string): void {
  ctx.files!.set(rel, text);
  ctx.texts!.current.set(oid, text);
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
