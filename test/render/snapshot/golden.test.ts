import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { buildProxySnapshot } from '../../../src/render/snapshot/index.js';
import { PROJECT_ROOT } from '../../helpers/shared.js';
import { loadGoldenInput, toGoldenYaml } from './fixtures.js';
import { unifiedDiff } from './unified-diff.js';

// Golden files (STYLE.md §8): regenerate with REFRESH_GOLDEN=1, then review the diff in git.
const GOLDEN_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'golden');
const REFRESH = process.env.REFRESH_GOLDEN === '1';
const cases = readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith('.in.yaml'))
  .map((f) => f.slice(0, -'.in.yaml'.length))
  .sort();

describe('proxy snapshot golden files', () => {
  test('there are at least 8 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(8);
  });

  test.each(cases)('%s', (name) => {
    const { input } = loadGoldenInput(join(GOLDEN_DIR, `${name}.in.yaml`));
    const actual = toGoldenYaml(buildProxySnapshot(input));
    const outFile = join(GOLDEN_DIR, `${name}.out.yaml`);
    if (REFRESH || !existsSync(outFile)) {
      writeFileSync(outFile, actual);
      if (!REFRESH) throw new Error(`${outFile} did not exist; written. Review it, then re-run.`);
      return;
    }
    const expected = readFileSync(outFile, 'utf8');
    if (actual !== expected) {
      throw new Error(`${name}: snapshot differs from ${outFile} (REFRESH_GOLDEN=1 to accept)\n${unifiedDiff(expected, actual, `${name}.out.yaml`, 'rendered')}`);
    }
  });
});
