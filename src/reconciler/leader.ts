import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink, utimes, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { kubeErrorCode } from './kube-client.js';

/** Only the leader reconciles and writes status; the others wait and serve health. */
export interface LeaderElector {
  readonly identity: string;
  isLeader(): boolean;
  /** Starts campaigning; resolves after the first attempt. */
  start(): Promise<void>;
  /** Stops renewing and releases the lock if held. */
  stop(): Promise<void>;
  onChange(listener: (leader: boolean) => void): void;
}

export interface LeaderTiming {
  /** A lock not renewed for this long may be taken over. */
  leaseDurationMs: number;
  /** How often the holder renews and candidates retry. */
  renewIntervalMs: number;
}

export const DEFAULT_LEADER_TIMING: LeaderTiming = { leaseDurationMs: 15_000, renewIntervalMs: 5_000 };

export function defaultIdentity(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

abstract class Campaign implements LeaderElector {
  private leader = false;
  private timer?: NodeJS.Timeout;
  private readonly listeners: Array<(leader: boolean) => void> = [];
  private stopped = false;
  private ticking?: Promise<void>;

  constructor(
    readonly identity: string,
    protected readonly timing: LeaderTiming,
  ) {}

  isLeader(): boolean {
    return this.leader;
  }
  onChange(listener: (leader: boolean) => void): void {
    this.listeners.push(listener);
  }
  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    if (this.leader) {
      await this.release().catch(() => undefined);
      this.set(false);
    }
  }

  protected abstract attempt(holding: boolean): Promise<boolean>;
  protected abstract release(): Promise<void>;

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.ticking = (async () => {
      let leader = false;
      try {
        leader = await this.attempt(this.leader);
      } catch {
        // Unable to reach the lock: a leader that cannot renew steps down (safe side).
        leader = false;
      }
      if (!this.stopped) this.set(leader);
    })();
    await this.ticking;
    this.ticking = undefined;
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.timing.renewIntervalMs);
  }

  private set(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    for (const l of this.listeners) l(leader);
  }
}

/**
 * The embedded default: a lock file created with O_EXCL, renewed by touching its mtime; a lock
 * whose mtime is older than the lease duration is stale and taken over (renamed away atomically,
 * so only one candidate wins).
 */
export class FileLockElector extends Campaign {
  constructor(
    private readonly path: string,
    identity = defaultIdentity(),
    timing: LeaderTiming = DEFAULT_LEADER_TIMING,
  ) {
    super(identity, timing);
  }

  protected async attempt(holding: boolean): Promise<boolean> {
    await mkdir(dirname(this.path), { recursive: true });
    if (holding) {
      if (!(await this.ownsLock())) return false;
      const now = new Date();
      await utimes(this.path, now, now);
      return true;
    }
    if (await this.tryCreate()) return true;
    const st = await stat(this.path).catch(() => undefined);
    if (!st) return this.tryCreate();
    if (Date.now() - st.mtimeMs <= this.timing.leaseDurationMs) return false;
    const aside = `${this.path}.stale-${randomBytes(4).toString('hex')}`;
    try {
      await rename(this.path, aside);
    } catch {
      return false; // another candidate took it first
    }
    await unlink(aside).catch(() => undefined);
    return this.tryCreate();
  }

  protected async release(): Promise<void> {
    if (await this.ownsLock()) await unlink(this.path);
  }

  private async tryCreate(): Promise<boolean> {
    try {
      const fh = await open(this.path, 'wx', 0o644);
      await fh.writeFile(JSON.stringify({ holder: this.identity, pid: process.pid, acquiredAt: new Date().toISOString() }) + '\n');
      await fh.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private async ownsLock(): Promise<boolean> {
    try {
      const content = JSON.parse(await readFile(this.path, 'utf8')) as { holder?: string };
      return content.holder === this.identity;
    } catch {
      return false;
    }
  }
}

/** A coordination.k8s.io/v1 Lease, as client-go's leader election uses it. */
export class KubeLeaseElector extends Campaign {
  private readonly api: CoordinationV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly name = 'trellis-operator',
    identity = defaultIdentity(),
    timing: LeaderTiming = DEFAULT_LEADER_TIMING,
  ) {
    super(identity, timing);
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  protected async attempt(holding: boolean): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.max(1, Math.round(this.timing.leaseDurationMs / 1000));
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (kubeErrorCode(err) !== 404) throw err;
      try {
        await this.api.createNamespacedLease({
          namespace: this.namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.name, namespace: this.namespace },
            spec: { holderIdentity: this.identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      } catch (err2) {
        if (kubeErrorCode(err2) === 409) return false;
        throw err2;
      }
    }
    const spec = lease.spec ?? {};
    const renewed = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 < now.getTime();
    const mine = spec.holderIdentity === this.identity;
    if (!mine && spec.holderIdentity && !expired) return false;
    if (!mine && holding) return false;
    const next: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: now,
        ...(mine ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
      },
    };
    try {
      await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: next });
      return true;
    } catch (err) {
      if (kubeErrorCode(err) === 409) return false;
      throw err;
    }
  }

  protected async release(): Promise<void> {
    const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    if (lease.spec?.holderIdentity !== this.identity) return;
    await this.api.replaceNamespacedLease({
      name: this.name,
      namespace: this.namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: new Date() } },
    });
  }
}

/** Used when leader election is off (a single replica by construction). */
export class AlwaysLeader implements LeaderElector {
  readonly identity = 'single';
  isLeader(): boolean {
    return true;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  onChange(): void {}
}
