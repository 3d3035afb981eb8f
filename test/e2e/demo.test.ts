import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { PROJECT_ROOT } from '../helpers/shared.js';
import type { DemoResult } from '../../src/demo/run-demo.js';

/**
 * The compact demo end to end, as real processes: git smart-HTTP server, operator, four cluster
 * processes of bookinfo behind Trellis proxies, load. It asserts (inside the demo, reported as
 * checks) stage order, the promotion branches, the rollback of a bad version with prod untouched,
 * the revert commit and the status branch's commits and files.
 */
test('npm run demo (compact): upgrade through every stage, bad version caught in dev and reverted', async () => {
  const child = spawn(join(PROJECT_ROOT, 'bin', 'trellis'), ['demo', '--compact', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const last = stdout.trim().split('\n').pop() ?? '';
  let result: DemoResult;
  try {
    result = JSON.parse(last) as DemoResult;
  } catch {
    throw new Error(`demo printed no result (exit ${code}):\n${stdout.slice(-3000)}\n${stderr.slice(-2000)}`);
  }
  const failed = result.checks.filter((c) => !c.ok);
  expect(failed).toEqual([]);
  expect(result.checks.map((c) => c.name)).toEqual(
    expect.arrayContaining(['baseline', 'stage order', 'promotions', 'upgrade', 'rollback', 'prod untouched', 'revert commit', 'status branch']),
  );
  expect(result.figures.rollbackSeconds).toBeGreaterThan(0);
  expect(code).toBe(0);
}, 600_000);
