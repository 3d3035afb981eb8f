import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { validateSnapshot } from '../../../src/mesh/snapshot-schema.js';
import { buildProxySnapshot } from '../../../src/render/snapshot/index.js';
import { PROJECT_ROOT } from '../../helpers/shared.js';
import { loadGoldenInput } from './fixtures.js';

// Every rendered snapshot must pass the contract's JSON schema and reference checks (src/mesh),
// which the proxy applies before it accepts a snapshot.
const GOLDEN_DIR = join(PROJECT_ROOT, 'test', 'fixtures', 'golden');
const cases = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.in.yaml')).sort();

describe('rendered snapshots satisfy the snapshot schema', () => {
  test.each(cases)('%s', (file) => {
    const { input } = loadGoldenInput(join(GOLDEN_DIR, file));
    const result = validateSnapshot(JSON.parse(JSON.stringify(buildProxySnapshot(input))));
    expect(result.ok ? [] : result.errors).toEqual([]);
  });
});
