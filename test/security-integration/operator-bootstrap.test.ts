import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { DemoConfigRepo } from '../../src/demo/config-repo.js';
import { startChild, type Child } from '../../src/demo/processes.js';
import { startGitHttpServer, type GitHttpServer } from '../../src/reconciler/git-http-server.js';
import { isCaError, requestBootstrapCertificate } from '../../src/security/index.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

/** `trellis operator` as a real process: mesh CA in the state dir, join tokens, POST /v1/bootstrap. */
const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');
let root: string;
let git: GitHttpServer;
let operator: Child;
let api: string;
let tokenFile: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'trellis-sec-op-'));
  await writeFile(join(root, 'secret'), 'bootstrap-test-secret');
  await DemoConfigRepo.create({ sampleRoot: PROJECT_ROOT, workDir: join(root, 'work'), bareDir: join(root, 'git', 'config.git'), analysisInterval: '2s', minRequests: 5, maxP99LatencyMs: 5000 });
  git = await startGitHttpServer({ root: join(root, 'git') });
  operator = startChild('operator', TRELLIS, [
    'operator', '--repo', git.url('config.git'), '--branch', 'main', '--interval', '5s', '--state-dir', join(root, 'operator'),
    '--host', '127.0.0.1', '--port', '0', '--discovery-host', '127.0.0.1', '--discovery-port', '0', '--leader-election', 'none',
    '--no-git-status', '--webhook-secret-file', join(root, 'secret'),
  ], join(root, 'operator.log'));
  api = String((await operator.waitFor('control plane started', 60_000)).api);
  tokenFile = String((await operator.waitFor('join token file', 60_000)).tokenFile);
}, 90_000);

afterAll(async () => {
  await operator?.stop();
  await git?.close();
  await rm(root, { recursive: true, force: true });
});

describe('operator mesh CA and join-token bootstrap', () => {
  test('the root CA and the token file are in the state dir, owner-only', async () => {
    expect(tokenFile.startsWith(join(root, 'operator', 'tokens'))).toBe(true);
    expect((await stat(tokenFile)).mode & 0o077).toBe(0);
    const caFiles = await import('node:fs/promises').then((fs) => fs.readdir(join(root, 'operator', 'ca')));
    expect(caFiles.length).toBeGreaterThan(0);
  });

  test('a proxy with the cluster token gets a SPIFFE certificate; a wrong token gets 401', async () => {
    const token = (await readFile(tokenFile, 'utf8')).trim();
    const cluster = tokenFile.split('/').pop()!.replace(/\.token$/, '');
    const cert = await requestBootstrapCertificate({ url: `${api}/v1/bootstrap`, cluster, token, trustDomain: 'cluster.local', namespace: 'bookinfo', serviceAccount: 'bookinfo-ratings' });
    expect(cert.spiffeId).toBe('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-ratings');
    const leaf = new X509Certificate(cert.certChainPem);
    expect(leaf.verify(new X509Certificate(cert.rootCertPem).publicKey)).toBe(true);

    const refused = await requestBootstrapCertificate({ url: `${api}/v1/bootstrap`, cluster, token: `${token}x`, trustDomain: 'cluster.local', namespace: 'bookinfo', serviceAccount: 'x' }).catch((e: unknown) => e);
    expect(isCaError(refused) && refused.code).toBe('AUTHN');

    const log = await readFile(join(root, 'operator.log'), 'utf8');
    expect(log).toContain('bootstrap certificate issued');
    expect(log).not.toContain(token);
  });
});
