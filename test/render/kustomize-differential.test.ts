/**
 * Parity with the real kustomize: `kubectl kustomize DIR` (kustomize v5 built into kubectl) is the oracle.
 * Every fixture under test/fixtures/kustomize/<case> and every overlay of the sample repository is built by
 * both, and the parsed object lists must be equal, in order. Cases under _errors/ must fail in both, and
 * ours must say what test/fixtures/kustomize/_errors/<case>/expected-error.txt says.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { DiskFileSystem } from '../../src/render/fs.js';
import { buildKustomization, toKubernetesDocument } from '../../src/render/kustomize/index.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

const run = promisify(execFile);
const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'kustomize');
const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
const describeWithKubectl = HAS_KUBECTL
  ? describe
  : (((name: string, fn: () => void) => describe.skip(`${name} [skipped: kubectl is not installed, so there is no kustomize oracle]`, fn)) as typeof describe);

async function runOracle(dir: string): Promise<unknown[]> {
  const { stdout } = await run('kubectl', ['kustomize', dir], { maxBuffer: 64 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}

/** kubectl runs for every directory start at once (four at a time); each test awaits its own. */
const pending = new Map<string, Promise<unknown[]>>();
let running = 0;
const waiting: Array<() => void> = [];
function oracle(dir: string): Promise<unknown[]> {
  let result = pending.get(dir);
  if (!result) {
    result = (async () => {
      if (running >= 4) await new Promise<void>((resolveSlot) => waiting.push(resolveSlot));
      running++;
      try {
        return await runOracle(dir);
      } finally {
        running--;
        waiting.shift()?.();
      }
    })();
    result.catch(() => undefined);
    pending.set(dir, result);
  }
  return result;
}

async function ours(root: string, dir: string): Promise<unknown[]> {
  const objects = await buildKustomization(new DiskFileSystem(root), dir);
  return objects.map(toKubernetesDocument);
}

const cases = readdirSync(FIXTURES).filter((name) => !name.startsWith('_')).sort();
const errorCases = readdirSync(join(FIXTURES, '_errors')).sort();
const overlaysDir = join(PROJECT_ROOT, 'kustomize', 'overlays');
const overlays = existsSync(overlaysDir) ? readdirSync(overlaysDir).sort() : [];

describeWithKubectl('kustomize parity with kubectl kustomize', () => {
  beforeAll(() => {
    for (const name of cases) void oracle(join(FIXTURES, name));
    for (const name of errorCases) void oracle(join(FIXTURES, '_errors', name));
    for (const cluster of overlays) void oracle(join(overlaysDir, cluster));
  });

  it('has at least 15 fixture kustomizations', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  it.each(cases)('fixture %s builds exactly as kubectl kustomize does', async (name) => {
    const expected = await oracle(join(FIXTURES, name));
    expect(expected.length).toBeGreaterThan(0);
    expect(await ours(FIXTURES, name)).toEqual(expected);
  });

  it.each(errorCases)('error fixture %s fails in both, with our message', async (name) => {
    await expect(oracle(join(FIXTURES, '_errors', name))).rejects.toThrow();
    const message = readFileSync(join(FIXTURES, '_errors', name, 'expected-error.txt'), 'utf8').trim();
    await expect(ours(FIXTURES, `_errors/${name}`)).rejects.toThrow(message);
  });

  it('the sample repository has an overlay per cluster', () => {
    expect(overlays).toEqual(expect.arrayContaining(['dev', 'staging', 'prod-us', 'prod-eu']));
  });

  it.each(overlays)('sample overlay %s builds exactly as kubectl kustomize does', async (cluster) => {
    const expected = await oracle(join(overlaysDir, cluster));
    expect(await ours(PROJECT_ROOT, `kustomize/overlays/${cluster}`)).toEqual(expected);
  });
});
