import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../../helpers/shared.js';

/** The project's sample config repository (trellis.yaml, versions/, kustomize/) as path → content. */
export async function sampleRepoFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = { 'trellis.yaml': await readFile(join(PROJECT_ROOT, 'trellis.yaml'), 'utf8') };
  for (const top of ['versions', 'kustomize']) {
    for (const entry of await readdir(join(PROJECT_ROOT, top), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      files[relative(PROJECT_ROOT, path)] = await readFile(path, 'utf8');
    }
  }
  return files;
}
