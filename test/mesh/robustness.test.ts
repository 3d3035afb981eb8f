import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from '@jest/globals';
import { parseDocuments } from '../../src/mesh/load.js';
import type { MeshObject } from '../../src/mesh/object.js';
import { validateObjects } from '../../src/mesh/validate.js';
import { describeWithIstioFixtures, PROJECT_ROOT, SHARED_ISTIO } from '../helpers/shared.js';

/**
 * Property test seeded by the corpora: replace one value at a random field path with a value of
 * another type. Validation must never throw, and every finding must point into the file.
 */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const REPLACEMENTS: unknown[] = [null, 0, -1, 1.5, '', 'X', [], [null], {}, { a: 1 }, true, 'not a duration', '(?=x)'];

function setAt(root: Record<string, unknown>, path: Array<string | number>, value: unknown): void {
  let node: any = root;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path[path.length - 1]] = value;
}

function valuePaths(value: unknown, path: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) value.forEach((v, i) => { out.push([...path, i]); valuePaths(v, [...path, i], out); });
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) { out.push([...path, k]); valuePaths(v, [...path, k], out); }
  return out;
}

function corpus(): Array<{ file: string; text: string }> {
  const dirs = [join(PROJECT_ROOT, 'test', 'fixtures', 'bad-input'), join(SHARED_ISTIO, 'validation-dataset'), join(SHARED_ISTIO, 'bookinfo-networking')];
  return dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort().map((f) => ({ file: f, text: readFileSync(join(dir, f), 'utf8') })));
}

describeWithIstioFixtures('validation is total over mutated input', () => {
  it('never throws and always points into the file', () => {
    const random = prng(20261122);
    let mutations = 0;
    const misplaced: string[] = [];
    for (const { file, text } of corpus()) {
      const lines = text.split('\n').length;
      const { objects } = parseDocuments(text, file);
      for (const original of objects) {
        const paths = valuePaths({ spec: original.spec, metadata: original.metadata });
        for (let i = 0; i < Math.min(5, paths.length); i++) {
          const copy = JSON.parse(JSON.stringify({ spec: original.spec, metadata: original.metadata }));
          const path = paths[Math.floor(random() * paths.length)];
          setAt(copy, path, REPLACEMENTS[Math.floor(random() * REPLACEMENTS.length)]);
          const mutated: MeshObject = { ...original, spec: copy.spec, metadata: copy.metadata };
          const result = validateObjects([mutated]);
          for (const d of [...result.errors, ...result.warnings]) {
            if (d.file !== file || d.line < 1 || d.line > lines || typeof d.message !== 'string' || d.message === '') {
              misplaced.push(`${file} ${path.join('.')}: ${JSON.stringify(d)}`);
            }
          }
          mutations++;
        }
      }
    }
    expect(misplaced).toEqual([]);
    expect(mutations).toBeGreaterThan(300);
  });
});
