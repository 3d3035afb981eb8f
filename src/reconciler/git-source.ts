import * as fs from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import git from 'isomorphic-git';
import { verifyCommitSignature, type SignaturePolicy, type SignatureVerdict } from './commit-signature.js';
import { authorizationHeader, Redactor, splitUrlCredentials, type GitAuth } from './credentials.js';
import { TransientError, errorMessage } from './errors.js';
import { agentForCa, boundedHttpClient, emptyWireStats, type WireStats } from './git-http-client.js';
import { checkoutSnapshot, pruneSnapshots, type BlobTexts, type SnapshotManifest } from './git-snapshot.js';

/** Reason of the TransientError a cancelled operation fails with (shutdown; not a fault to report). */
export const CANCELLED = 'Cancelled';

/** Default deadline of one git network operation (Flux's GitRepository default). */
export const DEFAULT_GIT_TIMEOUT_MS = 60_000;

/** What to follow: a branch (default `main`), a tag, or one pinned commit. */
export type TrackedRef = { branch: string } | { tag: string } | { commit: string };

export interface GitSourceOptions {
  /** `http(s)://…` smart-HTTP URL, or a local bare/non-bare repository path. */
  repo: string;
  ref?: TrackedRef;
  /** Where the full clone and the snapshots live (one directory per source). */
  cacheDir: string;
  auth?: GitAuth;
  /** PEM CA bundle trusted for an https:// remote with a private CA. */
  ca?: string | Buffer;
  timeoutMs?: number;
}

export interface SourceRevision {
  commit: string;
  /** Full ref name followed, e.g. `refs/heads/main`, `refs/tags/v1`, or the pinned commit id. */
  ref: string;
  /** True when this call downloaded objects (the tracked ref moved, or the clone was rebuilt). */
  fetched: boolean;
  /** Set when the previously seen commit is not an ancestor of this one (force-push, rewritten history). */
  historyRewritten?: boolean;
  /** Set when the local clone was found corrupted and rebuilt. */
  recovered?: 'reclone';
}

export interface CommitInfo {
  commit: string;
  message: string;
  author: { name: string; email: string; timestamp: number };
}

export interface Snapshot {
  commit: string;
  /** A clean, complete checkout of `commit` (read-only by convention). */
  dir: string;
  /**
   * The same files' text (path → text) when this call wrote the checkout and the tree holds only
   * regular files: the commit can be rendered from memory, without reading the checkout back.
   */
  files?: ReadonlyMap<string, string>;
}

/**
 * The config repository as seen by the operator. `latest()` is the change detector: one small
 * `ls-refs` request when nothing moved, a fetch into a full (not shallow) clone when it did.
 * `checkout()` gives a clean snapshot directory per commit. Every error is a TransientError
 * whose message has been stripped of credentials.
 */
export class GitSource {
  readonly isRemote: boolean;
  readonly url: string;
  readonly ref: TrackedRef;
  /** `repo@ref` with credentials removed, for logs and status. */
  readonly description: string;
  readonly wire: WireStats = emptyWireStats();
  private readonly auth?: GitAuth;
  private readonly redactor: Redactor;
  private readonly agent: ReturnType<typeof agentForCa>;
  private readonly timeoutMs: number;
  private readonly gitdir: string;
  private readonly snapshotsDir: string;
  private cache: object = {};
  private lastSeen?: string;
  /** Manifests of recent snapshots, newest last, to hard-link unchanged files into the next one. */
  private manifests: Array<{ commit: string; manifest: SnapshotManifest }> = [];
  /** Blob texts of the last checkout (content-addressed): unchanged files of the next one are not read again. */
  private blobTexts: BlobTexts = new Map();

  constructor(private readonly options: GitSourceOptions) {
    this.isRemote = /^https?:\/\//i.test(options.repo);
    const split = splitUrlCredentials(options.repo);
    this.url = this.isRemote ? split.url : resolve(options.repo);
    this.auth = options.auth ?? split.auth;
    this.redactor = new Redactor(this.auth);
    this.agent = agentForCa(this.isRemote && this.url.startsWith('https:') ? options.ca : undefined);
    this.ref = options.ref ?? { branch: 'main' };
    this.timeoutMs = options.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
    this.description = `${this.redactor.redact(this.url)}@${refLabel(this.ref)}`;
    this.gitdir = this.isRemote ? join(options.cacheDir, 'repo.git') : localGitdir(this.url);
    this.snapshotsDir = join(options.cacheDir, 'snapshots');
  }

  get fullRef(): string {
    const r = this.ref;
    return 'branch' in r ? `refs/heads/${r.branch}` : 'tag' in r ? `refs/tags/${r.tag}` : r.commit;
  }

  /** Strips credentials from text that might contain them. */
  redact(text: string): string {
    return this.redactor.redact(text);
  }

  /**
   * Resolves the tracked ref to a commit, fetching only when it moved. With `probe: false` (a
   * webhook said the branch moved) the ls-refs round trip is skipped and the branch is fetched
   * directly.
   */
  async latest(opts: { probe?: boolean } = {}): Promise<SourceRevision> {
    try {
      const rev = this.isRemote ? await this.latestRemote(opts.probe ?? true) : await this.latestLocal();
      if (this.lastSeen && this.lastSeen !== rev.commit) {
        rev.historyRewritten = !(await this.isAncestor(this.lastSeen, rev.commit));
      }
      this.lastSeen = rev.commit;
      return rev;
    } catch (err) {
      throw this.transient(err);
    }
  }

  /** Checks `commit` out into a clean snapshot; rebuilds a corrupted clone once. */
  async checkout(commit: string): Promise<Snapshot> {
    try {
      return await this.checkoutOnce(commit);
    } catch (err) {
      if (!this.isRemote) throw this.transient(err);
      // Objects missing or unreadable: the clone is corrupted. Start from a fresh clone.
      try {
        await this.reclone();
        return await this.checkoutOnce(commit);
      } catch (err2) {
        throw this.transient(err2);
      }
    }
  }

  private async checkoutOnce(commit: string): Promise<Snapshot> {
    const previous = [...this.manifests].reverse().find((m) => m.commit !== commit && fs.existsSync(join(this.snapshotsDir, m.commit)));
    const reuse = previous ? { dir: join(this.snapshotsDir, previous.commit), manifest: previous.manifest } : undefined;
    const texts = { previous: this.blobTexts, current: new Map<string, string>() };
    const out = await checkoutSnapshot({ gitdir: this.gitdir, commit, snapshotsDir: this.snapshotsDir, cache: this.cache, reuse, texts });
    if (out.manifest) this.manifests = [...this.manifests.filter((m) => m.commit !== commit), { commit, manifest: out.manifest }].slice(-3);
    if (out.files) this.blobTexts = texts.current;
    return { commit, dir: out.dir, files: out.files };
  }

  /** Checks the commit's SSH or OpenPGP signature against the policy (see commit-signature.ts). */
  verifySignature(commit: string, policy: SignaturePolicy): Promise<SignatureVerdict> {
    return verifyCommitSignature(this.gitdir, commit, policy);
  }

  async commitInfo(commit: string): Promise<CommitInfo> {
    const { commit: c } = await git.readCommit({ fs, gitdir: this.gitdir, oid: commit, cache: this.cache });
    return { commit, message: c.message.trim(), author: { name: c.author.name, email: c.author.email, timestamp: c.author.timestamp } };
  }

  /** Deletes every snapshot except the listed commits. */
  async pruneSnapshots(keep: Iterable<string>): Promise<void> {
    await pruneSnapshots(this.snapshotsDir, keep);
  }

  // ---- remote ---------------------------------------------------------------------------------

  /** Aborts every git network operation in flight (shutdown); they fail with reason `Cancelled`. */
  cancel(): void {
    for (const cancel of this.inFlight) cancel();
  }

  private readonly inFlight = new Set<() => void>();

  private async withDeadline<T>(fn: (http: ReturnType<typeof boundedHttpClient>) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let cancel!: () => void;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new TransientError('GitOperationTimeout', `git operation timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      cancel = () => {
        controller.abort();
        reject(new TransientError(CANCELLED, 'git operation cancelled: operator stopping'));
      };
    });
    this.inFlight.add(cancel);
    const http = boundedHttpClient({ signal: controller.signal, headers: authorizationHeader(this.auth), stats: this.wire, idleTimeoutMs: this.timeoutMs, agent: this.agent });
    try {
      return await Promise.race([fn(http), deadline]);
    } finally {
      this.inFlight.delete(cancel);
      clearTimeout(timer);
      controller.abort();
    }
  }

  private async remoteCommit(): Promise<string> {
    const r = this.ref;
    if ('commit' in r) return r.commit;
    const name = this.fullRef;
    // Protocol v1 answers with every ref in the single GET /info/refs; v2's ls-refs needs two round trips.
    const refs = await this.withDeadline((http) =>
      git.listServerRefs({ http, url: this.url, prefix: name, peelTags: 'tag' in r, protocolVersion: 1 }),
    );
    const hit = refs.find((x) => x.ref === name);
    if (!hit) throw new TransientError('RefNotFound', `${name} not found on ${this.redact(this.url)}`);
    return hit.peeled ?? hit.oid;
  }

  private async latestRemote(probe: boolean): Promise<SourceRevision> {
    const exists = fs.existsSync(join(this.gitdir, 'HEAD'));
    if (!exists) await this.initClone();
    const r = this.ref;
    if (!probe && 'branch' in r) {
      const before = await this.localTracking();
      await this.fetch();
      const after = await this.localTracking();
      if (!after) throw new TransientError('RefNotFound', `${this.fullRef} not found on ${this.redact(this.url)}`);
      return { commit: after, ref: this.fullRef, fetched: after !== before };
    }
    if ('commit' in r && (await this.hasCommit(r.commit))) return { commit: r.commit, ref: r.commit, fetched: false };
    const remote = await this.remoteCommit();
    if (await this.hasCommit(remote)) return { commit: remote, ref: this.fullRef, fetched: false };
    await this.fetch();
    if (!(await this.hasCommit(remote))) {
      // The ref moved again between ls-refs and fetch; take what the fetch brought.
      const tracked = await this.localTracking();
      if (!tracked || !(await this.hasCommit(tracked))) {
        if ('commit' in r) throw new TransientError('CommitNotFound', `commit ${r.commit} is not reachable from any ref on ${this.redact(this.url)}`);
        throw new TransientError('GitOperationFailed', `fetch of ${this.fullRef} did not bring ${remote.slice(0, 12)}`);
      }
      return { commit: tracked, ref: this.fullRef, fetched: true };
    }
    return { commit: remote, ref: 'commit' in r ? r.commit : this.fullRef, fetched: true };
  }

  private async localTracking(): Promise<string | undefined> {
    const r = this.ref;
    const name = 'branch' in r ? `refs/remotes/origin/${r.branch}` : 'tag' in r ? `refs/tags/${r.tag}` : undefined;
    if (!name) return undefined;
    try {
      const oid = await git.resolveRef({ fs, gitdir: this.gitdir, ref: name });
      return await this.peel(oid);
    } catch {
      return undefined;
    }
  }

  private async fetch(): Promise<void> {
    const r = this.ref;
    await this.withDeadline((http) =>
      git.fetch({
        fs,
        http,
        gitdir: this.gitdir,
        remote: 'origin',
        url: this.url,
        ...('branch' in r ? { ref: r.branch, singleBranch: true, tags: false } : { singleBranch: false, tags: true }),
        cache: this.cache,
      }),
    );
  }

  private async initClone(): Promise<void> {
    await mkdir(this.options.cacheDir, { recursive: true });
    await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: 'main' });
    await git.addRemote({ fs, gitdir: this.gitdir, remote: 'origin', url: this.url, force: true });
  }

  private async reclone(): Promise<void> {
    await rm(this.gitdir, { recursive: true, force: true });
    this.cache = {};
    await this.initClone();
    await this.fetch();
  }

  // ---- local ----------------------------------------------------------------------------------

  private async latestLocal(): Promise<SourceRevision> {
    const r = this.ref;
    if ('commit' in r) {
      if (!(await this.hasCommit(r.commit))) throw new TransientError('CommitNotFound', `commit ${r.commit} not found in ${this.url}`);
      return { commit: r.commit, ref: r.commit, fetched: false };
    }
    const oid = await git.resolveRef({ fs, gitdir: this.gitdir, ref: this.fullRef });
    return { commit: await this.peel(oid), ref: this.fullRef, fetched: false };
  }

  // ---- helpers --------------------------------------------------------------------------------

  private async peel(oid: string): Promise<string> {
    let current = oid;
    for (let i = 0; i < 5; i++) {
      const obj = await git.readObject({ fs, gitdir: this.gitdir, oid: current, format: 'parsed', cache: this.cache });
      if (obj.type !== 'tag') return current;
      current = (obj.object as { object: string }).object;
    }
    return current;
  }

  private async hasCommit(oid: string): Promise<boolean> {
    try {
      await git.readCommit({ fs, gitdir: this.gitdir, oid, cache: this.cache });
      return true;
    } catch {
      return false;
    }
  }

  private async isAncestor(ancestor: string, oid: string): Promise<boolean> {
    try {
      return await git.isDescendent({ fs, gitdir: this.gitdir, oid, ancestor, depth: -1, cache: this.cache });
    } catch {
      return false;
    }
  }

  private transient(err: unknown): TransientError {
    if (err instanceof TransientError) return new TransientError(err.reason, this.redact(err.message));
    const status = (err as { data?: { statusCode?: number } }).data?.statusCode;
    const code = (err as { code?: string }).code;
    let reason = 'GitOperationFailed';
    if (status === 401 || status === 403) reason = 'AuthenticationFailed';
    else if (code === 'ABORT_ERR' || (err as Error)?.name === 'AbortError' || /timed out/i.test(errorMessage(err))) reason = 'GitOperationTimeout';
    const prefix = status ? `HTTP ${status} from ${this.url}: ` : '';
    return new TransientError(reason, this.redact(`${prefix}${errorMessage(err)}`));
  }
}

function localGitdir(path: string): string {
  const dotGit = join(path, '.git');
  return fs.existsSync(dotGit) ? dotGit : path;
}

export function refLabel(ref: TrackedRef): string {
  return 'branch' in ref ? ref.branch : 'tag' in ref ? `tag:${ref.tag}` : `commit:${ref.commit.slice(0, 12)}`;
}
