import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Owner-only modes for everything secret under the state dir. */
export const SECRET_FILE_MODE = 0o600;
export const SECRET_DIR_MODE = 0o700;

export async function ensureSecretDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: SECRET_DIR_MODE });
  await chmod(dir, SECRET_DIR_MODE);
}

/**
 * Writes `content` atomically (temp file in the same dir, then rename) with mode 0600, so a crash
 * never leaves a half-written key and the file is never readable by others, even briefly.
 */
export async function writeSecretFile(path: string, content: string): Promise<void> {
  await ensureSecretDir(dirname(path));
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(temp, content, { mode: SECRET_FILE_MODE, flag: 'wx' });
  await chmod(temp, SECRET_FILE_MODE);
  await rename(temp, path);
}

export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export async function fileMode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}
