import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { MAX_FILE_BYTES, parseDocuments } from '../../mesh/load.js';
import { formatDiagnostic, type Diagnostic } from '../../mesh/object.js';
import { sortDiagnostics, validateObject } from '../../mesh/validate.js';
import { loadRepositoryFromDir } from '../../render/repository.js';
import type { RepositoryRender } from '../../render/types.js';

interface ValidateOptions {
  file?: string[];
  repo: string;
  strict?: boolean;
}

/**
 * `trellis validate -f FILE...`: standalone files, object by object, as `istioctl validate -f` does.
 * `trellis validate [--repo DIR] [--strict]`: the whole config repository (Fleet, every cluster, every version).
 * Exit 1 on errors; warnings fail only with --strict.
 */
export function register(program: Command): void {
  program
    .command('validate')
    .description('validate mesh config files (-f) or a whole config repository (default: the current directory)')
    .option('-f, --file <path...>', 'files or directories of YAML to validate standalone (as istioctl validate -f)')
    .option('--repo <dir>', 'config repository to validate', '.')
    .option('--strict', 'fail on warnings too')
    .action(async (opts: ValidateOptions) => {
      const failed = opts.file && opts.file.length > 0 ? await validateFiles(opts.file, opts.strict === true) : await validateRepository(opts.repo, opts.strict === true);
      if (failed) process.exitCode = 1;
    });
}

const YAML_FILE = /\.(ya?ml|json)$/i;
/** A directory's kustomization files are build instructions, not mesh config: skipped when expanding it. */
const KUSTOMIZATION = /(^|\/)kustomization\.ya?ml$/;

/** Files named on the command line, directories expanded to their YAML/JSON files (sorted, recursive). */
async function expand(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) {
      const entries = (await readdir(path, { recursive: true })).map(String).sort();
      for (const entry of entries) {
        const full = join(path, entry);
        if (YAML_FILE.test(entry) && !KUSTOMIZATION.test(entry) && (await stat(full)).isFile()) out.push(full);
      }
    } else out.push(path);
  }
  return out;
}

async function validateFiles(paths: string[], strict: boolean): Promise<boolean> {
  let errors = 0;
  let warnings = 0;
  for (const path of await expand(paths)) {
    const shown = relative(process.cwd(), resolve(path)) || path;
    const diagnostics: Diagnostic[] = [];
    let objects = 0;
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => err);
    if (info instanceof Error) {
      diagnostics.push({ severity: 'error', file: shown, line: 1, col: 1, message: `cannot read: ${info.code === 'ENOENT' ? 'no such file' : info.message}` });
    } else if (info.size > MAX_FILE_BYTES) {
      diagnostics.push({ severity: 'error', file: shown, line: 1, col: 1, message: `file is ${info.size} bytes, over the limit of ${MAX_FILE_BYTES} bytes; refused` });
    } else {
      const parsed = parseDocuments(await readFile(path, 'utf8'), shown);
      diagnostics.push(...parsed.diagnostics);
      objects = parsed.objects.length;
      for (const obj of parsed.objects) {
        const result = validateObject(obj);
        diagnostics.push(...result.errors, ...result.warnings);
      }
    }
    const sorted = sortDiagnostics(diagnostics);
    for (const d of sorted) console.log(formatDiagnostic(d));
    const fileErrors = sorted.filter((d) => d.severity === 'error').length;
    const fileWarnings = sorted.length - fileErrors;
    errors += fileErrors;
    warnings += fileWarnings;
    console.log(fileErrors === 0 ? `"${shown}" is valid (${objects} object${objects === 1 ? '' : 's'}${fileWarnings ? `, ${fileWarnings} warning(s)` : ''})` : `"${shown}" is invalid: ${fileErrors} error(s), ${fileWarnings} warning(s)`);
  }
  return errors > 0 || (strict && warnings > 0);
}

async function validateRepository(dir: string, strict: boolean): Promise<boolean> {
  const repo = await loadRepositoryFromDir(resolve(dir));
  for (const d of [...repo.errors, ...repo.warnings]) console.log(formatDiagnostic(d));
  if (repo.clusters.length > 0) {
    if (repo.errors.length + repo.warnings.length > 0) console.log('');
    console.log(summaryTable(repo));
  }
  const verdict = repo.errors.length > 0 ? 'invalid' : strict && repo.warnings.length > 0 ? 'invalid (--strict: warnings fail)' : 'valid';
  const rendered = `${repo.clusters.length} of ${repo.fleet.spec.clusters?.length ?? 0} cluster(s) rendered`;
  console.log(`\nrepository ${verdict}: ${rendered}, ${repo.errors.length} error(s), ${repo.warnings.length} warning(s)`);
  return repo.errors.length > 0 || (strict && repo.warnings.length > 0);
}

/** One row per cluster: stage, version, profile, and its objects counted by kind. */
function summaryTable(repo: RepositoryRender): string {
  const stageOf = new Map<string, string>();
  for (const stage of repo.fleet.spec.stages ?? []) for (const c of stage.clusters ?? []) stageOf.set(c, stage.name);
  const rows = repo.clusters.map((c) => {
    const counts = new Map<string, number>();
    for (const obj of [c.istioOperator, ...c.objects]) counts.set(obj.kind, (counts.get(obj.kind) ?? 0) + 1);
    const kinds = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kind, n]) => `${kind}=${n}`).join(' ');
    return [c.cluster, stageOf.get(c.cluster) ?? '-', c.version, String(c.istioOperator.spec.profile ?? 'default'), String(c.objects.length + 1), kinds];
  });
  const header = ['CLUSTER', 'STAGE', 'VERSION', 'PROFILE', 'OBJECTS', 'KINDS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}
