/** `trellis validate` as a user runs it: bin/trellis as a child process, on the sample and on broken copies. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/shared.js';

const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function trellis(args: string[], cwd = PROJECT_ROOT): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(TRELLIS, args, { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

let scratch: string;
const outside = (): string => join(scratch, 'outside');

/** A copy of the sample repository, broken by `breakIt`. */
async function brokenCopy(name: string, breakIt: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(scratch, name);
  await cp(join(PROJECT_ROOT, 'trellis.yaml'), join(dir, 'trellis.yaml'));
  await cp(join(PROJECT_ROOT, 'versions'), join(dir, 'versions'), { recursive: true });
  await cp(join(PROJECT_ROOT, 'kustomize'), join(dir, 'kustomize'), { recursive: true });
  await breakIt(dir);
  return dir;
}

async function replaceIn(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  if (!text.includes(from)) throw new Error(`test setup: "${from}" not in ${file}`);
  await writeFile(file, text.replace(from, to));
}

const results: Record<string, Run> = {};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'trellis-validate-'));
  await writeFile(join(scratch, 'outside'), 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: stolen\n');
  // One copy with four independent breakages: the versions/1.16.1 tag (a folder no cluster uses), a missing
  // version (prod-us), a symlink out of the repository (staging), two IstioOperators (dev). Each is also
  // tested alone, in process, in repository.test.ts; here the user-facing command must report them all.
  const broken = await brokenCopy('broken', async (d) => {
    await replaceIn(join(d, 'versions/1.16.1/istiooperator.yaml'), 'tag: 1.16.1', 'tag: 1.16.0');
    await replaceIn(join(d, 'kustomize/overlays/prod-us/kustomization.yaml'), 'versions/1.15.4', 'versions/1.17.0');
    await symlink(outside(), join(d, 'kustomize/overlays/staging/leak.yaml'));
    await replaceIn(join(d, 'kustomize/overlays/staging/kustomization.yaml'), '- ../../../versions/1.15.4', '- ../../../versions/1.15.4\n- leak.yaml');
    await writeFile(join(d, 'kustomize/overlays/dev/extra-operator.yaml'), 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: second\n  namespace: istio-system\nspec:\n  profile: minimal\n');
    await replaceIn(join(d, 'kustomize/overlays/dev/kustomization.yaml'), '- ../../../versions/1.15.4', '- ../../../versions/1.15.4\n- extra-operator.yaml');
  });
  const warningsOnly = await brokenCopy('warnings-only', async (d) => {
    await cp(join(d, 'versions/1.16.1'), join(d, 'versions/1.17.0'), { recursive: true });
    await replaceIn(join(d, 'versions/1.17.0/istiooperator.yaml'), 'tag: 1.16.1', 'tag: 1.17.0');
    await rm(join(d, 'versions/1.17.0/UPGRADE.md'));
  });
  await writeFile(join(scratch, 'bad-vs.yaml'), [
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata:',
    '  name: reviews',
    'spec:',
    '  hosts: [reviews]',
    '  http:',
    '  - route:',
    '    - destination: {host: reviews}',
    '    timeout: 5 seconds',
    '',
  ].join('\n'));
  await writeFile(join(scratch, 'syntax.yaml'), 'kind: [unclosed\n');
  // Each spawn is a Node process loading the CLI through tsx; two at a time on a shared 2-core machine.
  const jobs: Array<[string, () => Promise<Run>]> = [
    ['sample', () => trellis(['validate'])],
    ['broken', () => trellis(['validate', '--repo', broken])],
    ['warnings', () => trellis(['validate', '--repo', warningsOnly])],
    ['warningsStrict', () => trellis(['validate', '--repo', warningsOnly, '--strict'])],
    ['filesGood', () => trellis(['validate', '-f', 'kustomize/base/virtual-services.yaml', 'versions/1.16.1'])],
    ['filesBad', () => trellis(['validate', '-f', join(scratch, 'bad-vs.yaml'), join(scratch, 'syntax.yaml'), 'missing.yaml'], scratch)],
  ];
  const queue = [...jobs];
  await Promise.all([0, 1].map(async () => {
    for (let job = queue.shift(); job; job = queue.shift()) results[job[0]] = await job[1]();
  }));
}, 300_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('trellis validate (whole repository)', () => {
  it('accepts the sample repository and prints a per-cluster summary', () => {
    const run = results.sample;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^CLUSTER\s+STAGE\s+VERSION\s+PROFILE\s+OBJECTS\s+KINDS$/m);
    for (const [cluster, stage] of [['dev', 'dev'], ['staging', 'staging'], ['prod-us', 'prod'], ['prod-eu', 'prod']]) {
      expect(run.stdout).toMatch(new RegExp(`^${cluster}\\s+${stage}\\s+1\\.15\\.4\\s+default\\s+20\\s+AuthorizationPolicy=4 DestinationRule=4 Gateway=1 IstioOperator=1 PeerAuthentication=2 Service=4 VirtualService=4$`, 'm'));
    }
    expect(run.stdout).toContain('repository valid: 4 of 4 cluster(s) rendered, 0 error(s), 0 warning(s)');
  });

  it('refuses a broken copy, reporting every problem with file:line, object and field', () => {
    const run = results.broken;
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('versions/1.16.1/istiooperator.yaml:8:3: error: IstioOperator istio-system/control-plane spec.tag: spec.tag "1.16.0" must equal its version folder "1.16.1" (versions/1.16.1/)');
    expect(run.stdout).toContain('kustomize/overlays/prod-us/kustomization.yaml:6:3: error: Kustomization resources[1]: overlay references mesh version "1.17.0", but versions/1.17.0 does not exist (versions in this repository: 1.15.4, 1.16.1)');
    expect(run.stdout).toContain('kustomize/overlays/staging/kustomization.yaml:7:3: error: Kustomization resources[2]: "leak.yaml": path "kustomize/overlays/staging/leak.yaml" is a symlink (or passes through one) that resolves outside the repository');
    expect(run.stdout).toContain('kustomize/overlays/dev/extra-operator.yaml:2:1: error: IstioOperator istio-system/second kind: cluster "dev" has 2 IstioOperators (versions/1.15.4/istiooperator.yaml:1, kustomize/overlays/dev/extra-operator.yaml:1); a cluster has exactly one');
    expect(run.stdout).not.toContain('stolen');
    expect(run.stdout).toMatch(/^prod-eu\s+prod\s+1\.15\.4/m);
    expect(run.stdout).toContain('repository invalid: 1 of 4 cluster(s) rendered, 4 error(s), 0 warning(s)');
  });

  it('passes with warnings, and fails on them with --strict', () => {
    const warning = 'versions/1.17.0:1:1: warning: version folder versions/1.17.0 has no UPGRADE.md (how to move to this version)';
    expect(results.warnings.code).toBe(0);
    expect(results.warnings.stdout).toContain(warning);
    expect(results.warnings.stdout).toContain('repository valid: 4 of 4 cluster(s) rendered, 0 error(s), 1 warning(s)');
    expect(results.warningsStrict.code).toBe(1);
    expect(results.warningsStrict.stdout).toContain(warning);
    expect(results.warningsStrict.stdout).toContain('repository invalid (--strict: warnings fail)');
  });
});

describe('trellis validate -f (standalone files)', () => {
  it('accepts valid files and directories', () => {
    expect(results.filesGood.code).toBe(0);
    expect(results.filesGood.stdout).toContain('"kustomize/base/virtual-services.yaml" is valid (4 objects)');
    expect(results.filesGood.stdout).toContain('"versions/1.16.1/istiooperator.yaml" is valid (1 object)');
    expect(results.filesGood.stdout).toContain('"versions/1.16.1/mesh/peer-authentication.yaml" is valid (1 object)');
  });

  it('prints every diagnostic as file:line:col and exits 1', () => {
    const run = results.filesBad;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^bad-vs\.yaml:10:\d+: error: VirtualService reviews spec\.http\[0\]\.timeout: .*5 seconds/m);
    expect(run.stdout).toContain('"bad-vs.yaml" is invalid: 1 error(s)');
    expect(run.stdout).toMatch(/^syntax\.yaml:\d+:\d+: error: YAML syntax error/m);
    expect(run.stdout).toContain('missing.yaml:1:1: error: cannot read: no such file');
  });
});
