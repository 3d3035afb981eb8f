import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { parse } from 'yaml';
import { register } from '../../src/cli/commands/profile.js';
import type { IstioOperatorSpec } from '../../src/mesh/api/index.js';
import { parseDocuments } from '../../src/mesh/load.js';
import type { MeshObject } from '../../src/mesh/object.js';
import { mergeIstioOperator, resolveIstioOperator } from '../../src/render/istio-operator.js';
import { RenderError } from '../../src/render/kustomize/errors.js';
import { deepMerge, listProfiles, MESH_CONFIG_DEFAULTS, profileSpec } from '../../src/render/profiles/index.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

const run = promisify(execFile);
const TRELLIS = join(PROJECT_ROOT, 'bin', 'trellis');

function iop(yamlText: string, file = 'versions/1.16.1/istiooperator.yaml'): MeshObject<IstioOperatorSpec> {
  const { objects, diagnostics } = parseDocuments(yamlText, file);
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return objects[0] as MeshObject<IstioOperatorSpec>;
}

describe('profiles', () => {
  it('are default, demo, minimal and empty', () => {
    expect(listProfiles().map((p) => p.name)).toEqual(['default', 'demo', 'minimal', 'empty']);
  });

  it('default spells out the Istio mesh defaults and turns on the ingress gateway only', () => {
    const spec = profileSpec('default');
    expect(spec.meshConfig).toMatchObject({
      accessLogFile: '',
      enableAutoMtls: true,
      outboundTrafficPolicy: { mode: 'ALLOW_ANY' },
      defaultHttpRetryPolicy: { attempts: 2, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes' },
      trustDomain: 'cluster.local',
      rootNamespace: 'istio-system',
      connectTimeout: '10s',
    });
    expect(spec.components?.ingressGateways).toEqual([{ name: 'istio-ingressgateway', enabled: true }]);
    expect(spec.components?.egressGateways).toEqual([{ name: 'istio-egressgateway', enabled: false }]);
  });

  it('demo, minimal and empty are overlays on default', () => {
    expect(profileSpec('demo').meshConfig?.accessLogFile).toBe('/dev/stdout');
    expect(profileSpec('demo').components?.egressGateways).toEqual([{ name: 'istio-egressgateway', enabled: true }]);
    expect(profileSpec('demo').components?.ingressGateways).toEqual([{ name: 'istio-ingressgateway', enabled: true }]);
    expect(profileSpec('minimal').components?.ingressGateways).toEqual([{ name: 'istio-ingressgateway', enabled: false }]);
    expect(profileSpec('minimal').components?.pilot).toEqual({ enabled: true });
    expect(profileSpec('empty').components).toMatchObject({ base: { enabled: false }, pilot: { enabled: false } });
    expect(profileSpec('empty').meshConfig?.connectTimeout).toBe('10s');
  });
});

describe('deepMerge', () => {
  it('merges maps, replaces lists and scalars, removes on null, and copies', () => {
    const base = { a: { b: 1, c: [1, 2] }, d: 'x', e: { f: 1 } };
    const merged = deepMerge(base, { a: { c: [3] }, d: 'y', e: null, g: { h: true } });
    expect(merged).toEqual({ a: { b: 1, c: [3] }, d: 'y', g: { h: true } });
    expect(base).toEqual({ a: { b: 1, c: [1, 2] }, d: 'x', e: { f: 1 } });
  });
});

describe('mergeIstioOperator', () => {
  const overlay = iop(`apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: control-plane
  namespace: istio-system
spec:
  profile: demo
  tag: 1.16.1
  meshConfig:
    accessLogEncoding: JSON
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
    defaultHttpRetryPolicy:
      attempts: 3
      retryOn: 5xx,503,connect-failure
  components:
    ingressGateways:
    - name: istio-ingressgateway
      enabled: true
    - name: internal-gateway
      enabled: true
`);

  it('lays the IstioOperator on its profile and fills the mesh defaults', () => {
    const merged = resolveIstioOperator(overlay);
    expect(merged.profile).toBe('demo');
    expect(merged.meshConfig).toEqual({
      ...MESH_CONFIG_DEFAULTS,
      accessLogFile: '/dev/stdout',
      accessLogEncoding: 'JSON',
      enableTracing: true,
      outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' },
      defaultHttpRetryPolicy: { attempts: 3, retryOn: '5xx,503,connect-failure' },
    });
    expect(merged.spec.tag).toBe('1.16.1');
    expect(merged.spec.components?.ingressGateways).toHaveLength(2);
    expect(merged.spec.components?.egressGateways).toEqual([{ name: 'istio-egressgateway', enabled: true }]);
    expect(merged.spec.meshConfig).toBe(merged.meshConfig);
    expect(overlay.spec.meshConfig?.accessLogFile).toBeUndefined();
  });

  it('takes a profile name and a bare spec', () => {
    expect(mergeIstioOperator('minimal', {}).meshConfig).toEqual(MESH_CONFIG_DEFAULTS);
    expect(mergeIstioOperator('empty', { meshConfig: { connectTimeout: '2s' } }).meshConfig.connectTimeout).toBe('2s');
  });

  it('uses default when spec.profile is absent', () => {
    const merged = resolveIstioOperator(iop('apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: x\nspec:\n  tag: 1.15.4\n'));
    expect(merged.profile).toBe('default');
    expect(merged.meshConfig.accessLogFile).toBe('');
  });

  it('refuses an unknown profile, naming file, line, object and field', () => {
    const bad = iop('apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  name: cp\n  namespace: istio-system\nspec:\n  tag: 1.16.1\n  profile: ambient\n');
    expect(() => resolveIstioOperator(bad)).toThrow(RenderError);
    expect(() => resolveIstioOperator(bad)).toThrow(
      'versions/1.16.1/istiooperator.yaml:8:3: error: IstioOperator istio-system/cp spec.profile: unknown profile "ambient" (Trellis profiles: default, demo, minimal, empty)',
    );
  });
});

/** Runs a `trellis profile …` command in process, capturing what it prints. */
async function inProcess(args: string[]): Promise<string> {
  const program = new Command('trellis').exitOverride();
  register(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  const log = console.log;
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
  console.log = (...parts: unknown[]) => void (out += `${parts.join(' ')}\n`);
  try {
    await program.parseAsync(['node', 'trellis', ...args]);
  } finally {
    process.stdout.write = write;
    console.log = log;
  }
  return out;
}

describe('trellis profile', () => {
  it('lists the profiles', async () => {
    const out = await inProcess(['profile', 'list']);
    expect(out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0])).toEqual(['default', 'demo', 'minimal', 'empty']);
  });

  it('dumps a profile as YAML', async () => {
    const doc = parse(await inProcess(['profile', 'dump', 'minimal']));
    expect(doc.kind).toBe('IstioOperator');
    expect(doc.spec.components.ingressGateways[0].enabled).toBe(false);
    expect(doc.spec.meshConfig.connectTimeout).toBe('10s');
  });

  // Two real spawns of bin/trellis: output format and exit codes as a user sees them.
  it('dumps a profile as JSON from bin/trellis', async () => {
    const jsonOut = JSON.parse((await run(TRELLIS, ['profile', 'dump', 'demo', '-o', 'json'], { timeout: 120_000 })).stdout);
    expect(jsonOut.spec.meshConfig.accessLogFile).toBe('/dev/stdout');
    expect(jsonOut.spec.meshConfig.trustDomain).toBe('cluster.local');
  }, 130_000);

  it('fails on an unknown profile with exit code 1', async () => {
    const err = await run(TRELLIS, ['profile', 'dump', 'ambient'], { timeout: 120_000 }).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stderr: string }).stderr).toContain('unknown profile "ambient" (known: default, demo, minimal, empty)');
  }, 130_000);
});
