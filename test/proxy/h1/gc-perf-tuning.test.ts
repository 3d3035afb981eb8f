import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../helpers/shared.js';

describe('useSingleThreadedGc', () => {
  it('switches off parallel GC pauses at run time, and V8 keeps running through scavenges and full GCs', () => {
    // In a child process: V8 flags are process-wide, and a flag V8 cannot take at run time aborts the process.
    const module = join(PROJECT_ROOT, 'src', 'proxy', 'gc-tuning.ts');
    const script = `
      const { useSingleThreadedGc, SINGLE_THREADED_GC_FLAGS } = await import(${JSON.stringify(module)});
      const { PerformanceObserver } = await import('node:perf_hooks');
      let gcs = 0;
      new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ['gc'] });
      useSingleThreadedGc();
      let keep = [];
      for (let i = 0; i < 300000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 20000) keep = []; }
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 50));
      console.log(JSON.stringify({ flags: SINGLE_THREADED_GC_FLAGS, gcs }));
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.flags).toContain('--no-parallel-scavenge');
    expect(out.gcs).toBeGreaterThan(1);
  });
});
