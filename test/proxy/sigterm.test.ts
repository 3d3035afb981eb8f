import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../helpers/shared.js';
import { cluster, endpoint, route, snapshot, toCluster } from './fixtures.js';
import { send, startUpstream, waitFor, type Upstream } from './helpers.js';

let child: ChildProcess | undefined;
let up: Upstream | undefined;
let dir: string | undefined;
afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await up?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  child = undefined;
  up = undefined;
});

describe('trellis proxy (child process)', () => {
  it('serves from --config, and on SIGTERM stops accepting, drains in-flight requests and exits 0', async () => {
    const release: Array<() => void> = [];
    up = await startUpstream((req, res) => {
      if (req.url === '/slow') release.push(() => res.end('slow done'));
      else res.end('fast');
    });
    dir = mkdtempSync(join(tmpdir(), 'trellis-sigterm-'));
    const config = join(dir, 'snapshot.json');
    writeFileSync(config, JSON.stringify(snapshot({ hosts: [{ domains: ['svc'], routes: [route({ action: toCluster('c') })] }], clusters: [cluster('c')], endpoints: { c: [endpoint(up.port)] } })));
    child = spawn(join(PROJECT_ROOT, 'bin', 'trellis'), ['proxy', '--mode', 'sidecar', '--config', config, '--state-dir', join(dir, 'state'), '--outbound-port', '0', '--admin-port', '0', '--bind', '127.0.0.1', '--drain-ms', '10000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: any[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => { try { lines.push(JSON.parse(l)); } catch { /* not JSON */ } });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    await waitFor(() => lines.some((l) => l.msg === 'proxy started') || child!.exitCode !== null, 45000, 'proxy start');
    const started = lines.find((l) => l.msg === 'proxy started');
    expect(stderr).not.toMatch(/Error/);
    expect(started.snapshot).toBeTruthy();
    const port = started.ports.outbound as number;
    expect((await send(port, { headers: { host: 'svc' } })).body).toBe('fast');

    const slow = send(port, { path: '/slow', headers: { host: 'svc' } });
    await waitFor(() => release.length === 1, 5000, 'slow request at upstream');
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    await waitFor(() => lines.some((l) => l.msg === 'draining'), 5000, 'draining log');
    // New connections are refused while draining.
    await expect(send(port, { headers: { host: 'svc' } })).rejects.toThrow(/ECONNREFUSED/);
    release[0]();
    const r = await slow;
    expect(r.status).toBe(200);
    expect(r.body).toBe('slow done');
    expect(await exited).toBe(0);
  }, 90000);
});
