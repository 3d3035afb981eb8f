import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { validateSnapshot } from '../../../src/mesh/snapshot-schema.js';
import { buildProxySnapshot } from '../../../src/render/snapshot/index.js';
import { parseDocuments } from '../../../src/mesh/load.js';
import { PROJECT_ROOT, SHARED_ISTIO, describeWithIstioFixtures } from '../../helpers/shared.js';
import { clusterOf, endpointOf, loadGoldenInput, proxyOf } from './fixtures.js';

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

describeWithIstioFixtures("Istio's own samples render to valid snapshots", () => {
  test('every validation-dataset and bookinfo document together, several proxies, both modes', () => {
    const objects = ['validation-dataset', 'bookinfo-networking'].flatMap((sub) => {
      const dir = join(SHARED_ISTIO, sub);
      return readdirSync(dir)
        .filter((f) => f.endsWith('.yaml'))
        .sort()
        .flatMap((f) => parseDocuments(readFileSync(join(dir, f), 'utf8'), f).objects);
    });
    expect(objects.length).toBeGreaterThan(50);
    const cluster = clusterOf(objects);
    const endpoints = [
      endpointOf({ service: 'reviews', address: '10.0.0.1', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'reviews' }),
      endpointOf({ service: 'ratings', address: '10.0.0.2', labels: { app: 'ratings', version: 'v1' } }),
    ];
    for (const mode of ['sidecar', 'gateway'] as const) {
      for (const namespace of ['default', 'istio-system', 'foo']) {
        const proxy = proxyOf({ namespace, workload: 'w', labels: { app: 'reviews', version: 'v1', istio: 'ingressgateway' }, mode });
        const snapshot = buildProxySnapshot({ cluster, endpoints, proxy });
        const result = validateSnapshot(JSON.parse(JSON.stringify(snapshot)));
        expect({ mode, namespace, errors: result.ok ? [] : result.errors }).toEqual({ mode, namespace, errors: [] });
        expect(buildProxySnapshot({ cluster: clusterOf([...objects].reverse()), endpoints, proxy }).version).toBe(snapshot.version);
      }
    }
  });
});
