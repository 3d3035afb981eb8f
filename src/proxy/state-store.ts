import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProxySnapshot } from '../mesh/snapshot.js';

export const STATE_FILE = 'snapshot.json';

/** Writes the last good snapshot atomically (temp file + rename), so a crash never leaves half a file. */
export function persistSnapshot(stateDir: string, s: ProxySnapshot): void {
  mkdirSync(stateDir, { recursive: true });
  const target = join(stateDir, STATE_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s));
  renameSync(tmp, target);
}

export function loadPersistedSnapshot(stateDir: string): { found: true; value: unknown } | { found: false; error?: string } {
  const file = join(stateDir, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { found: false };
    return { found: false, error: `${file}: ${(err as Error).message}` };
  }
  try {
    return { found: true, value: JSON.parse(text) };
  } catch (err) {
    return { found: false, error: `${file}: ${(err as Error).message}` };
  }
}
