import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ClusterRolloutState } from './engine.js';

export interface RolloutStateFile {
  version: 1;
  clusters: Record<string, ClusterRolloutState>;
}

/**
 * Persists rollout state so a restarted operator (even after kill -9) resumes at the same step.
 * Writes go to a temp file that is fsynced and renamed over the old one: a reader sees the old
 * state or the new one, never a torn file.
 */
export class RolloutStateStore {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'rollout-state.json');
  }

  async load(): Promise<RolloutStateFile> {
    try {
      const parsed = JSON.parse(await readFile(this.path, 'utf8')) as RolloutStateFile;
      if (parsed.version !== 1 || typeof parsed.clusters !== 'object') throw new Error(`unsupported rollout state format in ${this.path}`);
      return parsed;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, clusters: {} };
      throw err;
    }
  }

  async save(state: RolloutStateFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(state, null, 2));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.path);
  }
}
