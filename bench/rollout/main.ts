/**
 * bench/rollout: the demo's figures, measured in one run.
 *   npm run bench:rollout [-- --quick]
 * --quick runs the compact demo (1.5 s analysis interval, lighter load); the full run uses the
 * demo's own settings (3 s interval).
 */
import { runDemo } from '../../src/demo/run-demo.js';

const quick = process.argv.includes('--quick');
const lines: string[] = [];
const result = await runDemo({ compact: quick, out: (l) => lines.push(l) });
const f = result.figures;
const stages = 3;
const steps = 3;
const lowerBound = (stages * steps * f.analysisIntervalMs) / 1000;

const rows: Array<[string, string, string]> = [
  ['blast radius of the bad version', `${f.blastRadiusPercent ?? '-'}% (${f.badPhaseFailures ?? '-'} of ${f.badPhaseRequests ?? '-'} fleet requests)`, '≤ 0.5%'],
  ['bad commit → rollback complete', `${f.rollbackSeconds ?? '-'} s = ${f.rollbackIntervals ?? '-'} analysis intervals`, '≤ 3 intervals'],
  ['good version across all stages', `${f.upgradeSeconds ?? '-'} s`, `≥ ${lowerBound} s (${stages} stages × ${steps} steps × interval)`],
  ['requests during the run', `${f.totalRequests} (${f.totalFailures} failed)`, ''],
];
console.log(`rollout bench (${quick ? 'quick: compact demo' : 'full demo'}; analysis interval ${f.analysisIntervalMs} ms)\n`);
console.log(`${'measure'.padEnd(34)} ${'value'.padEnd(48)} goal / bound`);
for (const [m, v, g] of rows) console.log(`${m.padEnd(34)} ${v.padEnd(48)} ${g}`);
console.log('\nWhat bounds the upgrade time: each stage spends at least one analysis interval per canary step,');
console.log('plus the wait for enough canary requests, the promotion branch, its merge, and the next poll or webhook.');
if (!result.ok) {
  console.log('\nthe demo did not pass all checks:');
  for (const c of result.checks.filter((x) => !x.ok)) console.log(`  ${c.name}: ${c.detail}`);
}
console.log(JSON.stringify({ bench: 'rollout', quick, ok: result.ok, ...f, upgradeLowerBoundSeconds: lowerBound }));
process.exitCode = result.ok ? 0 : 1;
