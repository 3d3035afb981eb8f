import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parseYamlFast } from '../../src/mesh/yaml-fast-path.js';
import { parseYamlWithSources, type TextOrigin } from '../../src/render/kustomize/yaml-source.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

/**
 * Kustomization files and patches are read by the fast YAML reader too (with scalar positions, which
 * locate inline patches, and top-level sequences, which JSON 6902 patches are). Whatever it reads must
 * equal the full parser's result, including the thrown error when there is one.
 */
function outcome(text: string, origin: TextOrigin, fastPath: boolean): unknown {
  try {
    return parseYamlWithSources(text, origin, { fastPath });
  } catch (err) {
    return { thrown: (err as Error).message, diagnostics: (err as { diagnostics?: unknown }).diagnostics };
  }
}

function takesFastPath(text: string): boolean {
  return parseYamlFast(text, 'f', { maxDepth: 64, maxDocumentBytes: 1 << 20, maxDocuments: 10_000 }, { sequences: true, scalarPositions: true }) !== undefined;
}

function files(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root)) {
    const path = join(root, entry);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else if (/\.ya?ml$|^Kustomization$/.test(entry)) out.push(path);
  }
  return out.sort();
}

describe('kustomization and patch YAML through the fast reader', () => {
  const inputs = [...files(join(PROJECT_ROOT, 'kustomize')), ...files(join(PROJECT_ROOT, 'versions')), ...files(join(PROJECT_ROOT, 'test', 'fixtures', 'kustomize'))]
    .map((path): [string, string] => [relative(PROJECT_ROOT, path), readFileSync(path, 'utf8')]);

  it('matches the full parser on every kustomization and patch file, with and without an embedding offset', () => {
    expect(inputs.length).toBeGreaterThan(30);
    let fast = 0;
    for (const [file, text] of inputs) {
      if (!takesFastPath(text)) continue;
      fast++;
      for (const origin of [{ file }, { file, lineOffset: 3, colOffset: 4 }]) {
        expect({ file, origin, result: outcome(text, origin, true) }).toStrictEqual({ file, origin, result: outcome(text, origin, false) });
      }
    }
    expect(fast).toBeGreaterThan(inputs.length / 2);
  });

  it('records the positions of block and plain scalar values, and reads top-level sequences', () => {
    const text = 'patches:\n- target:\n    kind: VirtualService\n  patch: |-\n    - op: remove\n      path: /spec/http/0\n';
    expect(takesFastPath(text)).toBe(true);
    const [doc] = parseYamlWithSources(text, { file: 'k.yaml' });
    expect(doc.fieldSources['patches[0].patch#block']).toEqual({ file: 'k.yaml', line: 4, col: 10 });
    expect(doc.fieldSources['patches[0].target.kind#value']).toEqual({ file: 'k.yaml', line: 3, col: 11 });
    const ops = parseYamlWithSources('- op: remove\n  path: /spec/http/0\n', { file: 'k.yaml', lineOffset: 4, colOffset: 4 });
    expect(ops[0].value).toEqual([{ op: 'remove', path: '/spec/http/0' }]);
    // the item is the mapping, which starts at its first key (column 3, plus the offset of 4)
    expect(ops[0].fieldSources['[0]']).toEqual({ file: 'k.yaml', line: 5, col: 7 });
    expect(ops).toStrictEqual(parseYamlWithSources('- op: remove\n  path: /spec/http/0\n', { file: 'k.yaml', lineOffset: 4, colOffset: 4 }, { fastPath: false }));
  });

  it('matches the full parser on 300 randomly damaged kustomization and patch files', () => {
    let state = 7;
    const random = (): number => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state / 0x7fffffff;
    };
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const inserts = [' ', '  ', '\n', ':', '- ', '-', '#', "'", '"', '[', ']', '{', '}', ',', '|', '|-', '>', '&a', '*a', '!', '?', 'x', '1', '---\n', ': ', ' #', '\n-\n', '\n  ', '~'];
    let fast = 0;
    for (let i = 0; i < 300; i++) {
      let text = pick(inputs)[1];
      for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
        const at = Math.floor(random() * text.length);
        text = random() < 0.6 ? text.slice(0, at) + pick(inserts) + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
      }
      if (!takesFastPath(text)) continue;
      fast++;
      const origin = { file: 'm.yaml', lineOffset: 2, colOffset: 1 };
      expect({ case: i, text, result: outcome(text, origin, true) }).toStrictEqual({ case: i, text, result: outcome(text, origin, false) });
    }
    expect(fast).toBeGreaterThan(50);
  });
});
