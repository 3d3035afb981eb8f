import * as fs from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import git from 'isomorphic-git';
import { authorizationHeader, Redactor, splitUrlCredentials, type GitAuth } from '../credentials.js';
import { errorMessage } from '../errors.js';
import { boundedHttpClient, emptyWireStats, withGitDeadline, type WireStats } from '../git-http-client.js';
import { DEFAULT_GIT_TIMEOUT_MS } from '../git-source.js';
import type { RepoFileSystem } from '../../render/types.js';
import { commitTreeChanges, type CommitAuthor } from './git-tree.js';
import type { FileChanges } from './plan.js';

/** A read-only view of one commit's tree, for planning changes on top of the newest tip. */
export class GitCommitFileSystem implements RepoFileSystem {
  constructor(private readonly gitdir: string, private readonly commit: string, private readonly cache: object = {}) {}

  private async entry(path: string): Promise<{ type: 'blob' | 'tree' | 'commit'; oid: string } | undefined> {
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    const { commit } = await git.readCommit({ fs, gitdir: this.gitdir, oid: this.commit, cache: this.cache });
    let current: { type: 'blob' | 'tree' | 'commit'; oid: string } = { type: 'tree', oid: commit.tree };
    for (const part of parts) {
      if (current.type !== 'tree') return undefined;
      const { tree } = await git.readTree({ fs, gitdir: this.gitdir, oid: current.oid, cache: this.cache });
      const next = tree.find((e) => e.path === part);
      if (!next) return undefined;
      current = { type: next.type, oid: next.oid };
    }
    return current;
  }

  async readFile(path: string): Promise<string> {
    const e = await this.entry(path);
    if (!e || e.type !== 'blob') throw new Error(`${path}: no such file at ${this.commit.slice(0, 12)}`);
    const { blob } = await git.readBlob({ fs, gitdir: this.gitdir, oid: e.oid, cache: this.cache });
    return Buffer.from(blob).toString('utf8');
  }

  async exists(path: string): Promise<boolean> {
    return (await this.entry(path)) !== undefined;
  }

  async isDirectory(path: string): Promise<boolean> {
    return (await this.entry(path))?.type === 'tree';
  }

  async listDir(path: string): Promise<string[]> {
    const e = await this.entry(path);
    if (!e || e.type !== 'tree') throw new Error(`${path}: no such directory at ${this.commit.slice(0, 12)}`);
    const { tree } = await git.readTree({ fs, gitdir: this.gitdir, oid: e.oid, cache: this.cache });
    return tree.map((t) => t.path).sort();
  }
}

export interface PublishRequest {
  /** Branch whose tip the change is built on (the tracked branch). */
  baseBranch: string;
  /** Branch the commit is pushed to: the base itself (auto promotion, revert) or a new branch (pull-request). */
  targetBranch: string;
  /** Computes the changes on the tip it is given; called again when a push loses a race. Empty: nothing to publish. */
  plan: (tip: RepoFileSystem) => Promise<FileChanges>;
  message: string;
}

export const MAX_PUBLISH_ATTEMPTS = 5;

/**
 * Pushes operator-authored commits to the config repository: promotion branches, auto
 * promotions and revert commits. Never forces: a commit for the tracked branch is a fast-forward
 * of its tip, and a lost race is re-planned on the new tip. A promotion branch that already
 * exists with the same change is left alone.
 */
export class BranchPublisher {
  readonly wire: WireStats = emptyWireStats();
  private readonly isRemote: boolean;
  private readonly url: string;
  private readonly auth?: GitAuth;
  private readonly redactor: Redactor;
  private readonly gitdir: string;
  private readonly cache: object = {};

  constructor(private readonly opts: { repo: string; cacheDir: string; auth?: GitAuth; timeoutMs?: number; author?: CommitAuthor }) {
    this.isRemote = /^https?:\/\//i.test(opts.repo);
    const split = splitUrlCredentials(opts.repo);
    this.url = this.isRemote ? split.url : resolve(opts.repo);
    this.auth = opts.auth ?? split.auth;
    this.redactor = new Redactor(this.auth);
    this.gitdir = this.isRemote ? join(opts.cacheDir, 'publish.git') : fs.existsSync(join(this.url, '.git')) ? join(this.url, '.git') : this.url;
  }

  /** Returns the pushed commit, or undefined when the plan had nothing to change. */
  async publish(req: PublishRequest): Promise<string | undefined> {
    await this.ensureGitdir();
    let lastError: unknown;
    for (let attempt = 1; attempt <= MAX_PUBLISH_ATTEMPTS; attempt++) {
      const tip = await this.tipOf(req.baseBranch);
      if (!tip) throw new Error(`branch ${req.baseBranch} does not exist in ${this.redactor.redact(this.url)}`);
      const changes = await req.plan(new GitCommitFileSystem(this.gitdir, tip, this.cache));
      if (changes.size === 0) return undefined;
      const commit = await commitTreeChanges({ gitdir: this.gitdir, parent: tip, changes, message: req.message, author: this.opts.author });
      try {
        await this.push(req.targetBranch, commit, req.targetBranch !== req.baseBranch);
        return commit;
      } catch (err) {
        lastError = err;
        if (!/fast-forward|fetch first|rejected|moved/i.test(errorMessage(err))) throw new Error(this.redactor.redact(errorMessage(err)));
      }
    }
    throw new Error(this.redactor.redact(`push to ${req.targetBranch} rejected ${MAX_PUBLISH_ATTEMPTS} times: ${errorMessage(lastError)}`));
  }

  /** A read-only view of a branch's tip as the remote has it now; undefined when the branch does not exist. */
  async readBranch(branch: string): Promise<RepoFileSystem | undefined> {
    await this.ensureGitdir();
    const tip = await this.tipOf(branch);
    return tip ? new GitCommitFileSystem(this.gitdir, tip, this.cache) : undefined;
  }

  private async ensureGitdir(): Promise<void> {
    if (this.isRemote && !fs.existsSync(join(this.gitdir, 'HEAD'))) {
      await mkdir(this.opts.cacheDir, { recursive: true });
      await git.init({ fs, gitdir: this.gitdir, bare: true });
      await git.addRemote({ fs, gitdir: this.gitdir, remote: 'origin', url: this.url, force: true });
    }
  }

  private withHttp<T>(fn: (http: ReturnType<typeof boundedHttpClient>) => Promise<T>): Promise<T> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS;
    return withGitDeadline({ timeoutMs, headers: authorizationHeader(this.auth), stats: this.wire, onTimeout: () => new Error(`git operation timed out after ${timeoutMs} ms`) }, fn);
  }

  private async tipOf(branch: string): Promise<string | undefined> {
    const ref = `refs/heads/${branch}`;
    if (!this.isRemote) return git.resolveRef({ fs, gitdir: this.gitdir, ref }).catch(() => undefined);
    const advertised = await this.withHttp((http) => git.listServerRefs({ http, url: this.url, prefix: ref, protocolVersion: 1 }));
    if (!advertised.some((r) => r.ref === ref)) return undefined;
    await this.withHttp((http) => git.fetch({ fs, http, gitdir: this.gitdir, remote: 'origin', url: this.url, ref: branch, singleBranch: true, tags: false, cache: this.cache }));
    const refs = await this.withHttp((http) => git.listServerRefs({ http, url: this.url, prefix: ref, protocolVersion: 1 }));
    return refs.find((r) => r.ref === ref)?.oid;
  }

  private async push(branch: string, commit: string, isNewBranch: boolean): Promise<void> {
    const ref = `refs/heads/${branch}`;
    if (!this.isRemote) {
      const existing = await git.resolveRef({ fs, gitdir: this.gitdir, ref }).catch(() => undefined);
      if (existing && !isNewBranch) {
        const { commit: c } = await git.readCommit({ fs, gitdir: this.gitdir, oid: commit });
        if (!c.parent.includes(existing)) throw new Error('branch moved: not a fast-forward');
      }
      await git.writeRef({ fs, gitdir: this.gitdir, ref, value: commit, force: true });
      return;
    }
    await git.writeRef({ fs, gitdir: this.gitdir, ref, value: commit, force: true });
    const result = await this.withHttp((http) => git.push({ fs, http, gitdir: this.gitdir, url: this.url, ref, remoteRef: ref, force: isNewBranch, cache: this.cache }));
    const refResult = result.refs?.[ref];
    if (!result.ok || (refResult && !refResult.ok)) throw new Error(`push rejected: ${refResult?.error ?? result.error ?? 'unknown'}`);
  }
}
