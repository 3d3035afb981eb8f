import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { PROJECT_ROOT } from './helpers/shared.js';

const run = promisify(execFile);

test('bin/trellis runs the TypeScript CLI from a source clone', async () => {
  const { stdout } = await run(join(PROJECT_ROOT, 'bin', 'trellis'), ['--version']);
  expect(stdout.trim()).toBe('0.1.0');
});
