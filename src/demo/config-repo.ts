import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { isMap, parseDocument } from 'yaml';
import type { FleetSpec } from '../mesh/api/index.js';
import { DiskFileSystem } from '../render/fs.js';
import { planOverlayBumps, planUpgrade, type FileChanges } from '../reconciler/rollout/index.js';

const execFileP = promisify(execFile);

/** The demo's "developer": a clone of the sample config repository that commits and pushes with the git CLI. */
export class DemoConfigRepo {
  constructor(readonly workDir: string, readonly remoteUrl: string, private readonly webhook: { url: string; secret: string }) {}

  static readonly GIT_ENV: NodeJS.ProcessEnv = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Demo Developer',
    GIT_AUTHOR_EMAIL: 'dev@bookinfo.example',
    GIT_COMMITTER_NAME: 'Demo Developer',
    GIT_COMMITTER_EMAIL: 'dev@bookinfo.example',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
  };

  async git(...args: string[]): Promise<string> {
    const { stdout } = await execFileP('git', args, { cwd: this.workDir, env: DemoConfigRepo.GIT_ENV, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  }

  /** Copies the sample repository, tunes the Fleet for a short demo, commits, and creates the bare repository served over HTTP. */
  static async create(opts: { sampleRoot: string; workDir: string; bareDir: string; analysisInterval: string; minRequests: number; maxP99LatencyMs?: number }): Promise<void> {
    await mkdir(opts.workDir, { recursive: true });
    for (const entry of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(opts.sampleRoot, entry), join(opts.workDir, entry), { recursive: true });
    const fleetPath = join(opts.workDir, 'trellis.yaml');
    const doc = parseDocument(await readFile(fleetPath, 'utf8'));
    doc.setIn(['spec', 'rollout', 'analysis', 'interval'], opts.analysisInterval);
    doc.setIn(['spec', 'rollout', 'analysis', 'minRequests'], opts.minRequests);
    if (opts.maxP99LatencyMs !== undefined) doc.setIn(['spec', 'rollout', 'analysis', 'maxP99LatencyMs'], opts.maxP99LatencyMs);
    await writeFile(fleetPath, doc.toString());
    const run = (cwd: string, ...args: string[]) => execFileP('git', args, { cwd, env: DemoConfigRepo.GIT_ENV });
    await run(opts.workDir, 'init', '-q', '-b', 'main');
    await run(opts.workDir, 'add', '-A');
    await run(opts.workDir, 'commit', '-qm', 'Bookinfo fleet: four clusters on mesh 1.15.4');
    await mkdir(dirname(opts.bareDir), { recursive: true });
    await run(dirname(opts.bareDir), 'clone', '-q', '--bare', opts.workDir, opts.bareDir);
    await run(opts.bareDir, 'config', 'http.receivepack', 'true');
  }

  async fleet(): Promise<FleetSpec> {
    const doc = parseDocument(await readFile(join(this.workDir, 'trellis.yaml'), 'utf8'));
    if (!isMap(doc.contents)) throw new Error('trellis.yaml is not a mapping');
    return doc.toJS().spec as FleetSpec;
  }

  async writeChanges(changes: FileChanges): Promise<void> {
    for (const [path, text] of changes) {
      await mkdir(dirname(join(this.workDir, path)), { recursive: true });
      await writeFile(join(this.workDir, path), text);
    }
  }

  /** Commits everything, pushes main, and tells the operator by a signed webhook. */
  async commitAndPush(message: string): Promise<string> {
    await this.git('add', '-A');
    await this.git('commit', '-qm', message);
    await this.push();
    return this.git('rev-parse', 'HEAD');
  }

  async push(): Promise<void> {
    await this.git('push', '-q', this.remoteUrl, 'HEAD:refs/heads/main');
    await this.notify();
  }

  /** GitHub-style push webhook signed with X-Hub-Signature-256. */
  async notify(): Promise<void> {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: await this.git('rev-parse', 'HEAD') });
    const signature = `sha256=${createHmac('sha256', this.webhook.secret).update(body).digest('hex')}`;
    await fetch(this.webhook.url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature },
      signal: AbortSignal.timeout(5000),
    }).catch(() => undefined); // the poll catches up when a webhook is lost
  }

  /** Pulls the operator's commits on main (revert commits, auto promotions). */
  async pull(): Promise<void> {
    await this.git('fetch', '-q', this.remoteUrl, 'main');
    await this.git('merge', '-q', '--ff-only', 'FETCH_HEAD');
  }

  /** The operator's status branch: its commit log (author, subject) and the ClusterStatus file of each cluster. */
  async statusBranch(branch = 'trellis-status'): Promise<{ log: Array<{ author: string; subject: string }>; files: Record<string, string> }> {
    await this.git('fetch', '-q', this.remoteUrl, `${branch}:refs/remotes/status/${branch}`);
    const ref = `refs/remotes/status/${branch}`;
    const log = (await this.git('log', '--format=%an%x09%s', ref)).split('\n').filter(Boolean).map((l) => {
      const [author, subject] = l.split('\t');
      return { author, subject };
    });
    const files: Record<string, string> = {};
    for (const name of (await this.git('ls-tree', '--name-only', `${ref}:status`)).split('\n').filter(Boolean)) {
      files[name] = await this.git('show', `${ref}:status/${name}`);
    }
    return { log, files };
  }

  /** Promotion branches the operator pushed (`trellis/promote/...`). */
  async promotionBranches(): Promise<string[]> {
    const out = await this.git('ls-remote', '--heads', this.remoteUrl, 'trellis/promote/*');
    return out.split('\n').filter(Boolean).map((l) => l.split('\t')[1].replace('refs/heads/', ''));
  }

  /** Merges a promotion branch as a reviewer would merge its pull request, then pushes main. */
  async mergePromotion(branch: string): Promise<void> {
    await this.pull();
    await this.git('fetch', '-q', this.remoteUrl, branch);
    await this.git('merge', '-q', '--no-ff', '-m', `Merge pull request: ${branch}`, 'FETCH_HEAD');
    await this.push();
    await this.git('push', '-q', this.remoteUrl, `:refs/heads/${branch}`);
  }

  async bumpOverlays(clusters: string[], version: string): Promise<FileChanges> {
    return planOverlayBumps(new DiskFileSystem(this.workDir), await this.fleet(), clusters, version);
  }

  async planUpgrade(from: string, to: string): Promise<FileChanges> {
    return planUpgrade(new DiskFileSystem(this.workDir), await this.fleet(), from, to);
  }
}
