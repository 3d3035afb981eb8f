import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import type { ProxySnapshot } from '../../../src/mesh/snapshot.js';
import { contentHash } from '../../../src/render/hash.js';
import { runRender, type RenderOptions } from '../../../src/cli/commands/render.js';
import { PROJECT_ROOT } from '../../helpers/shared.js';

const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');

function spawnTrellis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TRELLIS, args, { cwd: PROJECT_ROOT, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function render(opts: Partial<RenderOptions> & { cluster: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runRender({ repo: PROJECT_ROOT, ...opts }, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trellis-render-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('bin/trellis render (child processes, sample repository)', () => {
  // both runs at once: each child pays the CLI's start-up, which dominates on a busy machine
  test("--cluster dev prints the cluster's objects; a bad endpoints file exits 1 with file:line:col", async () => {
    const badEndpoints = join(tmp, 'bad-endpoints.yaml');
    await writeFile(badEndpoints, '- service: reviews\n  address: 10.0.0.1\n  port: http\n');
    const [ok, bad] = await Promise.all([
      spawnTrellis(['render', '--cluster', 'dev']),
      spawnTrellis(['render', '--cluster', 'dev', '--proxy', 'bookinfo/x', '--endpoints', badEndpoints]),
    ]);

    expect(ok.stderr).not.toMatch(/error/);
    expect(ok.code).toBe(0);
    const docs = parseAllDocuments(ok.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: any });
    expect(docs[0].kind).toBe('IstioOperator');
    expect(docs.filter((d) => d.kind === 'IstioOperator')).toHaveLength(1);
    const reviews = docs.find((d) => d.kind === 'VirtualService' && d.metadata.name === 'reviews');
    // dev's overlay sends all of reviews' default traffic to the second destination
    expect(reviews?.spec.http[1].route.map((r: { weight: number }) => r.weight)).toEqual([0, 100]);

    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${badEndpoints}:3:9: endpoints[0].port: must be a port number`);
    expect(bad.stdout).toBe('');
    // generous: a child compiles the whole CLI through tsx (~3 s of cpu each); on a machine shared
    // by many test runs that alone has been seen to take 20 s of wall time
  }, 120_000);
});

describe('trellis render (in process, sample repository)', () => {
  test('--proxy renders that proxy: JSON snapshot with the endpoints file, version = content hash', async () => {
    const endpointsFile = join(tmp, 'endpoints.yaml');
    await writeFile(
      endpointsFile,
      [
        '- {service: reviews, namespace: bookinfo, address: 10.0.0.2, port: 9080, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews}',
        '- {service: reviews, namespace: bookinfo, address: 10.0.0.3, port: 9080, labels: {app: reviews, version: v3}, serviceAccount: bookinfo-reviews}',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = await render({
      cluster: 'staging', proxy: 'bookinfo/productpage-v1', labels: 'app=productpage,version=v1', service: 'productpage',
      serviceAccount: 'bookinfo-productpage', endpoints: endpointsFile, output: 'json',
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const snapshot = JSON.parse(stdout) as ProxySnapshot;
    const { version, ...rest } = snapshot;
    expect(version).toBe(contentHash(rest));
    expect(snapshot.proxy).toMatchObject({ cluster: 'staging', namespace: 'bookinfo', workload: 'productpage-v1', labels: { app: 'productpage', version: 'v1' } });
    const vh = snapshot.routeConfigs[0].virtualHosts.find((v) => v.name === 'reviews.bookinfo.svc.cluster.local');
    expect(vh?.domains).toContain('reviews:9080');
    const v3 = snapshot.endpoints.find((e) => e.cluster === 'outbound|9080|v3|reviews.bookinfo.svc.cluster.local');
    expect(v3?.endpoints.map((e) => e.address)).toEqual(['10.0.0.3']);
  });

  test('-o json without --proxy prints a List of the objects', async () => {
    const { code, stdout } = await render({ cluster: 'prod-eu', output: 'json' });
    expect(code).toBe(0);
    const list = JSON.parse(stdout) as { kind: string; items: Array<{ kind: string; source?: unknown }> };
    expect(list.kind).toBe('List');
    expect(list.items[0].kind).toBe('IstioOperator');
    expect(list.items.some((o) => o.kind === 'DestinationRule')).toBe(true);
    expect(list.items.every((o) => o.source === undefined)).toBe(true);
  });

  test('flag errors name the flag: unknown cluster, bad --proxy, --labels, --mode, -o, flags without --proxy', async () => {
    const cases: Array<[Partial<RenderOptions> & { cluster: string }, RegExp]> = [
      [{ cluster: 'nope' }, /unknown cluster "nope".*dev, staging, prod-us, prod-eu/],
      [{ cluster: 'dev', proxy: 'bookinfo' }, /--proxy: "bookinfo" is not NAMESPACE\/WORKLOAD/],
      [{ cluster: 'dev', proxy: 'bookinfo/x', labels: 'app' }, /--labels: "app" is not key=value/],
      [{ cluster: 'dev', proxy: 'bookinfo/x', mode: 'ambient' }, /--mode: "ambient" is not sidecar or gateway/],
      [{ cluster: 'dev', output: 'xml' }, /-o: "xml" is not yaml or json/],
      [{ cluster: 'dev', labels: 'a=b' }, /--labels needs --proxy/],
      [{ cluster: 'dev', proxy: 'bookinfo/x', endpoints: join(tmp, 'missing.yaml') }, /missing\.yaml: cannot read: ENOENT/],
    ];
    for (const [opts, message] of cases) {
      const { code, stdout, stderr } = await render(opts);
      expect({ opts, code, stdout }).toEqual({ opts, code: 1, stdout: '' });
      expect(stderr).toMatch(message);
    }
  });

  test('a repository that does not render: exit 1, every error with file:line, nothing printed', async () => {
    const repo = join(tmp, 'repo');
    for (const entry of ['trellis.yaml', 'versions', 'kustomize']) await cp(join(PROJECT_ROOT, entry), join(repo, entry), { recursive: true });
    const file = join(repo, 'kustomize', 'base', 'virtual-services.yaml');
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/timeout: /);
    await writeFile(file, text.replace(/timeout: \S+/, 'timeout: soon'));
    const { code, stdout, stderr } = await render({ cluster: 'dev', repo });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/virtual-services\.yaml:\d+:\d+: error: .*timeout/);
  });
});
