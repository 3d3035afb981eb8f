import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { createRenderCache, type RenderCache } from '../../src/render/cache.js';
import { MemoryFileSystem } from '../../src/render/fs.js';
import { buildKustomizationDetailed } from '../../src/render/kustomize/build.js';
import { loadRepository } from '../../src/render/repository.js';
import { buildProxySnapshot } from '../../src/render/snapshot/index.js';
import type { RepositoryRender } from '../../src/render/types.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

/** The sample repository (trellis.yaml, versions/, kustomize/) as in-memory files. */
function sampleFiles(): Record<string, string> {
  const files: Record<string, string> = { 'trellis.yaml': readFileSync(join(PROJECT_ROOT, 'trellis.yaml'), 'utf8') };
  const walk = (rel: string): void => {
    for (const entry of readdirSync(join(PROJECT_ROOT, rel))) {
      const path = `${rel}/${entry}`;
      if (statSync(join(PROJECT_ROOT, path)).isDirectory()) walk(path);
      else files[path] = readFileSync(join(PROJECT_ROOT, path), 'utf8');
    }
  };
  walk('versions');
  walk('kustomize');
  return files;
}

/** What a render means to its users (plain data: cached renders are frozen, uncached ones are not). */
function plain(render: RepositoryRender): unknown {
  return JSON.parse(JSON.stringify(render));
}

const VS_FILE = 'kustomize/base/virtual-services.yaml';

describe('render cache', () => {
  it('re-renders after a one-file change by parsing only that file, and equals an uncached render', async () => {
    const files = sampleFiles();
    const cache = createRenderCache();
    const first = await loadRepository(new MemoryFileSystem(files), { cache });
    expect(first.errors).toEqual([]);
    expect(first.clusters.map((c) => c.cluster)).toEqual(['dev', 'staging', 'prod-us', 'prod-eu']);
    const afterFirst = cache.stats;
    expect(afterFirst.parses).toBeGreaterThan(10);
    expect(plain(first)).toEqual(plain(await loadRepository(new MemoryFileSystem(files))));

    // the same content again (a new commit that touched nothing rendered): no parse, no build
    const again = await loadRepository(new MemoryFileSystem(files), { cache });
    expect(cache.stats.parses).toBe(afterFirst.parses);
    expect(cache.stats.builds).toBe(afterFirst.builds);
    expect(cache.stats.buildHits).toBe(afterFirst.buildHits + afterFirst.builds);
    expect(plain(again)).toEqual(plain(first));

    // one file changed: exactly one parse, and the same output as an uncached render of the change
    const changed = { ...files, [VS_FILE]: files[VS_FILE].replace('timeout: 6s', 'timeout: 7s') };
    expect(changed[VS_FILE]).not.toBe(files[VS_FILE]);
    const before = cache.stats;
    const cached = await loadRepository(new MemoryFileSystem(changed), { cache });
    expect(cache.stats.parses - before.parses).toBe(1);
    expect(cache.stats.validationHits).toBeGreaterThan(before.validationHits);
    const uncached = await loadRepository(new MemoryFileSystem(changed));
    expect(plain(cached)).toEqual(plain(uncached));
    expect(JSON.stringify(cached)).toContain('"timeout":"7s"');
  });

  it('serves frozen results, so a caller that mutates one fails loudly instead of poisoning later renders', async () => {
    const files = sampleFiles();
    const cache = createRenderCache();
    const render = await loadRepository(new MemoryFileSystem(files), { cache });
    const vs = render.clusters[0].objects.find((o) => o.kind === 'VirtualService')!;
    expect(Object.isFrozen(vs) && Object.isFrozen(vs.spec) && Object.isFrozen(vs.metadata)).toBe(true);
    expect(() => {
      (vs.metadata as { name: string }).name = 'poisoned';
    }).toThrow(TypeError);
    const next = await loadRepository(new MemoryFileSystem(files), { cache });
    expect(JSON.stringify(next)).not.toContain('poisoned');
    expect(plain(next)).toEqual(plain(await loadRepository(new MemoryFileSystem(files))));
  });

  it('renders proxy snapshots from frozen cached clusters (the renderer never mutates its input)', async () => {
    const cache = createRenderCache();
    const render = await loadRepository(new MemoryFileSystem(sampleFiles()), { cache });
    const uncached = await loadRepository(new MemoryFileSystem(sampleFiles()));
    for (const cluster of render.clusters) {
      const proxy: ProxyIdentity = {
        id: `${cluster.cluster}/default/productpage-v1/0`, cluster: cluster.cluster, namespace: 'default', workload: 'productpage-v1',
        labels: { app: 'productpage', version: 'v1' }, service: 'productpage', serviceAccount: 'bookinfo-productpage', mode: 'sidecar',
      };
      const fromCache = buildProxySnapshot({ cluster, endpoints: [], proxy });
      const fresh = uncached.clusters.find((c) => c.cluster === cluster.cluster)!;
      expect(fromCache.version).toBe(buildProxySnapshot({ cluster: fresh, endpoints: [], proxy }).version);
    }
  });

  it('reports the same errors as an uncached render when a change breaks the repository', async () => {
    const files = sampleFiles();
    const cache = createRenderCache();
    await loadRepository(new MemoryFileSystem(files), { cache });
    const broken = { ...files, [VS_FILE]: files[VS_FILE].replace('timeout: 6s', 'timeout: 6 seconds') };
    for (let round = 0; round < 2; round++) {
      const cached = await loadRepository(new MemoryFileSystem(broken), { cache });
      expect(cached.errors.length).toBeGreaterThan(0);
      expect(cached.errors.some((e) => e.file === VS_FILE && e.fieldPath?.endsWith('timeout'))).toBe(true);
      expect(plain(cached)).toEqual(plain(await loadRepository(new MemoryFileSystem(broken))));
    }
  });

  it('notices a deleted or added file that a build depends on, not only changed contents', async () => {
    const files = sampleFiles();
    const cache = createRenderCache();
    await loadRepository(new MemoryFileSystem(files), { cache });
    const withoutPatch = { ...files };
    delete withoutPatch['kustomize/overlays/prod-eu/patches/timeouts.yaml'];
    const cached = await loadRepository(new MemoryFileSystem(withoutPatch), { cache });
    expect(cached.errors.some((e) => e.message.includes('timeouts.yaml'))).toBe(true);
    expect(plain(cached)).toEqual(plain(await loadRepository(new MemoryFileSystem(withoutPatch))));
    // a second kustomization file in an overlay is an error kustomize reports; the cached build must see it
    const twoKustomizations = { ...files, 'kustomize/overlays/dev/kustomization.yml': files['kustomize/overlays/dev/kustomization.yaml'] };
    const again = await loadRepository(new MemoryFileSystem(twoKustomizations), { cache });
    expect(again.errors.some((e) => e.message.includes('more than one kustomization file'))).toBe(true);
    expect(plain(again)).toEqual(plain(await loadRepository(new MemoryFileSystem(twoKustomizations))));
  });

  it('evicts the least recently used entries beyond maxEntries and stays correct', async () => {
    const files = sampleFiles();
    const cache: RenderCache = createRenderCache({ maxEntries: 5 });
    const first = await loadRepository(new MemoryFileSystem(files), { cache });
    const second = await loadRepository(new MemoryFileSystem(files), { cache });
    expect(cache.stats.entries).toBeLessThanOrEqual(5);
    expect(cache.stats.evictions).toBeGreaterThan(0);
    expect(plain(second)).toEqual(plain(first));
  });

  it('caches parsed files for a plain kustomize build too', async () => {
    const fs = new MemoryFileSystem(sampleFiles());
    const cache = createRenderCache();
    const cold = await buildKustomizationDetailed(fs, 'kustomize/overlays/prod-us', { cache });
    const parses = cache.stats.parses;
    const warm = await buildKustomizationDetailed(fs, 'kustomize/overlays/prod-us', { cache });
    expect(cache.stats.parses).toBe(parses);
    expect(cache.stats.parseHits).toBeGreaterThanOrEqual(parses);
    // the build copies before it transforms: its own output is fresh, mutable, and equal each time
    expect(Object.isFrozen(warm.objects[0])).toBe(false);
    expect(warm.objects).toEqual(cold.objects);
  });
});
