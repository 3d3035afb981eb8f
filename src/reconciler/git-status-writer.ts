import * as fs from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import git, { type TreeEntry } from 'isomorphic-git';
import { stringify as toYaml } from 'yaml';
import { authorizationHeader, Redactor, splitUrlCredentials, type GitAuth } from './credentials.js';
import { TransientError, errorMessage } from './errors.js';
import { agentForCa, boundedHttpClient, emptyWireStats, withGitDeadline, type WireStats } from './git-http-client.js';
import { DEFAULT_GIT_TIMEOUT_MS } from './git-source.js';
import { clusterStatusResource } from './status-format.js';
import type { StatusBatch, StatusSink } from './status-publisher.js';

export const DEFAULT_STATUS_BRANCH = 'trellis-status';
export const OPERATOR_AUTHOR = { name: 'trellis-operator', email: 'trellis-operator@trellis.dev' } as const;
/** The only folder of the status branch the operator writes. */
export const STATUS_DIR = 'status';
/** Attempts to land one batch when others push to the status branch concurrently. */
export const MAX_PUSH_ATTEMPTS = 5;

export interface GitStatusWriterOptions {
  /** Same forms as the source: smart-HTTP URL or local repository path. */
  repo: string;
  branch?: string;
  /** Working directory for the writer's own clone of the status branch (remote repos). */
  cacheDir: string;
  auth?: GitAuth;
  /** PEM CA bundle trusted for an https:// remote with a private CA. */
  ca?: string | Buffer;
  timeoutMs?: number;
  author?: { name: string; email: string };
  now?: () => Date;
  /** Test seam: runs between building a commit and pushing it (to race a concurrent push). */
  beforePublish?: (attempt: number) => Promise<void>;
}

/**
 * Commits `status/<cluster>.yaml` to the status branch and pushes: one commit per batch, on top
 * of the current tip (an orphan branch when it does not exist yet). A rejected push
 * (non-fast-forward) is retried on the new tip, rewriting only the operator's own files.
 * History is never rewritten (no force push).
 */
export class GitStatusWriter implements StatusSink {
  readonly name = 'git';
  readonly branch: string;
  readonly wire: WireStats = emptyWireStats();
  private readonly isRemote: boolean;
  private readonly url: string;
  private readonly auth?: GitAuth;
  private readonly redactor: Redactor;
  private readonly agent: ReturnType<typeof agentForCa>;
  private readonly gitdir: string;
  private readonly cache: object = {};
  /** Last commit this writer created (tests, /v1/status). */
  lastCommit?: string;

  constructor(private readonly opts: GitStatusWriterOptions) {
    this.branch = opts.branch ?? DEFAULT_STATUS_BRANCH;
    this.isRemote = /^https?:\/\//i.test(opts.repo);
    const split = splitUrlCredentials(opts.repo);
    this.url = this.isRemote ? split.url : resolve(opts.repo);
    this.auth = opts.auth ?? split.auth;
    this.redactor = new Redactor(this.auth);
    this.agent = agentForCa(this.isRemote && this.url.startsWith('https:') ? opts.ca : undefined);
    this.gitdir = this.isRemote ? join(opts.cacheDir, 'status.git') : fs.existsSync(join(this.url, '.git')) ? join(this.url, '.git') : this.url;
  }

  get fullRef(): string {
    return `refs/heads/${this.branch}`;
  }

  async write(batch: StatusBatch): Promise<void> {
    try {
      await this.writeFiles(
        Object.fromEntries(batch.changed.map((c) => [`${c.cluster}.yaml`, toYaml(clusterStatusResource(c.cluster, c.status), { lineWidth: 0 })])),
        batch.message,
        batch.removed.map((c) => `${c}.yaml`),
      );
    } catch (err) {
      if (err instanceof TransientError) throw err;
      throw new TransientError('StatusWriteFailed', this.redactor.redact(`status branch ${this.branch}: ${errorMessage(err)}`));
    }
  }

  /** Writes (and deletes) files under `status/` as one commit; returns the commit or undefined when nothing changed. */
  async writeFiles(files: Record<string, string>, message: string, remove: string[] = []): Promise<string | undefined> {
    if (this.isRemote && !fs.existsSync(join(this.gitdir, 'HEAD'))) {
      await mkdir(this.opts.cacheDir, { recursive: true });
      await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
      await git.addRemote({ fs, gitdir: this.gitdir, remote: 'origin', url: this.url, force: true });
    }
    let lastError: unknown;
    for (let attempt = 1; attempt <= MAX_PUSH_ATTEMPTS; attempt++) {
      const tip = await this.currentTip();
      const commit = await this.buildCommit(tip, files, message, remove);
      if (!commit) return undefined;
      try {
        await this.opts.beforePublish?.(attempt);
        await this.publish(tip, commit);
        this.lastCommit = commit;
        return commit;
      } catch (err) {
        lastError = err;
        if (!isRejection(err)) throw err;
        // Someone else moved the branch: rebuild our change on the new tip.
      }
    }
    throw new TransientError('StatusPushRejected', this.redactor.redact(`push to ${this.branch} rejected ${MAX_PUSH_ATTEMPTS} times: ${errorMessage(lastError)}`));
  }

  private withHttp<T>(fn: (http: ReturnType<typeof boundedHttpClient>) => Promise<T>): Promise<T> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
    return withGitDeadline(
      { timeoutMs, headers: authorizationHeader(this.auth), stats: this.wire, agent: this.agent, onTimeout: () => new TransientError('GitOperationTimeout', `status push timed out after ${timeoutMs} ms`) },
      fn,
    );
  }

  /** The branch tip as the remote has it now (fetched into the local clone), or undefined. */
  private async currentTip(): Promise<string | undefined> {
    if (!this.isRemote) {
      try {
        return await git.resolveRef({ fs, gitdir: this.gitdir, ref: this.fullRef });
      } catch {
        return undefined;
      }
    }
    const refs = await this.withHttp((http) => git.listServerRefs({ http, url: this.url, prefix: this.fullRef, protocolVersion: 1 }));
    const tip = refs.find((r) => r.ref === this.fullRef)?.oid;
    if (!tip) return undefined;
    const have = await git.readCommit({ fs, gitdir: this.gitdir, oid: tip, cache: this.cache }).then(() => true, () => false);
    if (!have) {
      await this.withHttp((http) =>
        git.fetch({ fs, http, gitdir: this.gitdir, remote: 'origin', url: this.url, ref: this.branch, singleBranch: true, tags: false, cache: this.cache }),
      );
    }
    return tip;
  }

  /** A commit on `tip` replacing `status/<file>` blobs; undefined when every file is already identical. */
  private async buildCommit(tip: string | undefined, files: Record<string, string>, message: string, remove: string[]): Promise<string | undefined> {
    const gitdir = this.gitdir;
    let rootEntries: TreeEntry[] = [];
    let statusEntries: TreeEntry[] = [];
    if (tip) {
      const { commit } = await git.readCommit({ fs, gitdir, oid: tip, cache: this.cache });
      rootEntries = (await git.readTree({ fs, gitdir, oid: commit.tree, cache: this.cache })).tree;
      const statusTree = rootEntries.find((e) => e.path === STATUS_DIR && e.type === 'tree');
      if (statusTree) statusEntries = (await git.readTree({ fs, gitdir, oid: statusTree.oid, cache: this.cache })).tree;
    }
    let changed = false;
    for (const [name, content] of Object.entries(files)) {
      const oid = await git.writeBlob({ fs, gitdir, blob: Buffer.from(content, 'utf8') });
      const existing = statusEntries.find((e) => e.path === name);
      if (existing?.oid === oid) continue;
      changed = true;
      statusEntries = statusEntries.filter((e) => e.path !== name);
      statusEntries.push({ mode: '100644', path: name, oid, type: 'blob' });
    }
    for (const name of remove) {
      if (!statusEntries.some((e) => e.path === name)) continue;
      changed = true;
      statusEntries = statusEntries.filter((e) => e.path !== name);
    }
    if (!changed) return undefined;
    const statusTreeOid = await git.writeTree({ fs, gitdir, tree: statusEntries });
    rootEntries = rootEntries.filter((e) => e.path !== STATUS_DIR);
    rootEntries.push({ mode: '040000', path: STATUS_DIR, oid: statusTreeOid, type: 'tree' });
    const tree = await git.writeTree({ fs, gitdir, tree: rootEntries });
    const now = this.opts.now?.() ?? new Date();
    const who = { ...(this.opts.author ?? OPERATOR_AUTHOR), timestamp: Math.floor(now.getTime() / 1000), timezoneOffset: 0 };
    return git.writeCommit({ fs, gitdir, commit: { tree, parent: tip ? [tip] : [], author: who, committer: who, message } });
  }

  private async publish(tip: string | undefined, commit: string): Promise<void> {
    if (!this.isRemote) {
      // Local repository: compare-and-set by re-reading the ref right before moving it.
      const now = await git.resolveRef({ fs, gitdir: this.gitdir, ref: this.fullRef }).catch(() => undefined);
      if (now !== tip) throw Object.assign(new Error('status branch moved'), { code: 'PushRejectedError' });
      await git.writeRef({ fs, gitdir: this.gitdir, ref: this.fullRef, value: commit, force: true });
      return;
    }
    await git.writeRef({ fs, gitdir: this.gitdir, ref: this.fullRef, value: commit, force: true });
    const result = await this.withHttp((http) =>
      git.push({ fs, http, gitdir: this.gitdir, url: this.url, ref: this.fullRef, remoteRef: this.fullRef, force: false, cache: this.cache }),
    );
    const refResult = result.refs?.[this.fullRef];
    if (!result.ok || (refResult && !refResult.ok)) {
      const why = refResult?.error ?? result.error ?? 'rejected';
      throw Object.assign(new Error(`push rejected: ${why}`), { code: /fast-forward|fetch first|stale|lock/i.test(String(why)) ? 'PushRejectedError' : 'PushFailed' });
    }
  }
}

function isRejection(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'PushRejectedError' || code === 'NotFoundError' || /not-fast-forward|non-fast-forward|fetch first/i.test(errorMessage(err));
}
