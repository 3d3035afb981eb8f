import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { DEFAULT_LOAD_LIMITS, parseDocuments } from '../../src/mesh/load.js';
import { parseYamlFast, resolvePlain } from '../../src/mesh/yaml-fast-path.js';
import { describeWithIstioFixtures, PROJECT_ROOT, SHARED_ISTIO } from '../helpers/shared.js';

/**
 * The fast YAML reader must be invisible: for every input, parseDocuments gives exactly what the full
 * `yaml` parser gives (values, positions, diagnostics), whether the fast path took the file or left it.
 */
const LIMITS = DEFAULT_LOAD_LIMITS;
const HEAD = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n';

function expectSameAsFullParser(text: string, file = 'f.yaml'): void {
  const fast = parseDocuments(text, file);
  const full = parseDocuments(text, file, undefined, { fastPath: false });
  expect(fast).toStrictEqual(full);
}

function takesFastPath(text: string): boolean {
  return parseYamlFast(text, 'f.yaml', LIMITS) !== undefined;
}

function yamlFiles(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root)) {
    if (entry === 'node_modules' || entry.startsWith('.')) continue;
    const path = join(root, entry);
    if (statSync(path).isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry)) out.push(path);
  }
  return out.sort();
}

/** Inputs the fast path reads itself; each is compared with the full parser. */
const SUPPORTED: Record<string, string> = {
  'core-schema scalars': 'data:\n  a: 1\n  b: -1\n  c: +1\n  d: 0o17\n  e: 0x1F\n  f: 1.5\n  g: .5\n  h: 1e3\n  i: .inf\n  j: -.Inf\n  k: .nan\n  l: ~\n  m: null\n  n: Null\n  o: true\n  p: False\n  q: yes\n  r: 2s\n  s: 1.\n  t: 0.10\n  u: 08\n  v: 1_000\n  w: 0b11\n  x:\n  y: ""\n  z: \'\'\n',
  'quoted scalars and comments': 'data:\n  a: "x\\ty\\u00e9\\x41\\"\\\\\\/"\n  b: \'it\'\'s\'\n  c: "a # b"\n  d: a # b\n  e: a#b\n  f: "a: b"\n  g: http://x:80/y\n  h: 12:30\n',
  'sequence at the key indent': 'spec:\n  list:\n  - a\n  - b\n  other: 1\n',
  'nested and compact sequences': 'spec:\n  list:\n    - a: 1\n      b: 2\n    - c\n    - - d\n      - e\n    -\n      f: 1\n',
  'literal block scalars': 'spec:\n  lit: |\n    line1\n\n    line2\n\n  strip: |-\n    x\n    y\n  after: 1\n  list:\n  - |\n    in a sequence\n  - x\n',
  'literal with deeper lines': 'spec:\n  lit: |\n    a\n      b\n    c\n',
  'flow collections': 'spec:\n  flow: [a, "b", \'c\', 1, true, null, [x, y], {k: v}]\n  map: {a: 1, "b": 2, c: [d]}\n  empty: []\n  emptyMap: {}\n  spaced: [ a , b ]\n  url: [http://x]\n',
  'quoted and spaced keys': 'spec:\n  "quoted key": 1\n  \'single\': 2\n  key with spaces: 3\n  "a.b": 4\n  toString: 5\n',
  'empty documents and comments': '# comment\n\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n--- # trailing\n',
  'unicode': 'spec:\n  a: é ü 😀\n  "😀": 1\n',
  'deeper indentation': 'spec:\n    deep:\n        deeper: 1\n    back: 2\n',
  'null values': 'spec:\n  a:\n  b: 1\n  c: # comment\n',
  'comment lines between entries': 'spec:\n  a: 1 # trailing\n  # between\n  b:\n    # inside\n    c: 1\n',
  'mesh object errors (missing name)': 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  namespace: x\nspec: {}\n',
};

/** Inputs the fast path leaves to the full parser (errors, or YAML it does not read). */
const LEFT_TO_FULL_PARSER: Record<string, string> = {
  'duplicate key': 'spec:\n  a: 1\n  a: 2\n',
  'nested mapping in a compact value': 'spec:\n  a: b: c\n',
  'multi-line plain scalar': 'spec:\n  a: b\n    c\n',
  'anchor and alias': 'spec:\n  a: &x 1\n  b: *x\n',
  'tag': 'spec:\n  a: !!str 1\n',
  'folded scalar': 'spec:\n  a: >\n    folded\n',
  'keep chomping': 'spec:\n  a: |+\n    kept\n\n',
  'unterminated quote': 'spec:\n  a: "open\n  b: 1\n',
  'trailing comma in flow': 'spec:\n  x: [a, b,]\n',
  'single-pair mapping in flow': 'spec:\n  x: [a: b]\n',
  'flow key without value': 'spec:\n  x: {a}\n',
  'complex key': 'spec:\n  ? a\n  : b\n',
  'non-string key': 'spec:\n  1: a\n',
  'merge key': 'spec:\n  <<: {a: 1}\n',
  'proto key': 'spec:\n  __proto__: 1\n',
  'tab': 'spec:\n\ta: 1\n',
  'CRLF': 'spec:\r\n  a: 1\r\n',
  'reserved indicator': 'spec:\n  a: @x\n',
  'sequence where a key belongs': 'spec:\n  a: 1\n  - b\n',
  'document end marker': 'spec:\n  a: 1\n...\n',
  'top-level sequence': '- a\n',
  'escaped line break': 'spec:\n  a: "x\\\n    y"\n',
};

describe('fast YAML path', () => {
  for (const [name, body] of Object.entries(SUPPORTED)) {
    it(`reads ${name} exactly as the full parser does`, () => {
      const text = body.startsWith('apiVersion') || body.startsWith('#') ? body : HEAD + body;
      expect(takesFastPath(text)).toBe(true);
      expectSameAsFullParser(text);
    });
  }

  for (const [name, body] of Object.entries(LEFT_TO_FULL_PARSER)) {
    it(`leaves ${name} to the full parser (same result)`, () => {
      const text = body.startsWith('-') ? body : HEAD + body;
      expect(takesFastPath(text)).toBe(false);
      expectSameAsFullParser(text);
    });
  }

  it('records key and item positions (line and column)', () => {
    const [doc] = parseYamlFast(`${HEAD}spec:\n  hosts: [a, b]\n  http:\n  - route:\n    - destination: {host: a}\n`, 'f.yaml', LIMITS)!;
    expect(doc.source).toEqual({ file: 'f.yaml', line: 1, col: 1 });
    expect(doc.fieldSources['spec.hosts[1]']).toEqual({ file: 'f.yaml', line: 6, col: 14 });
    expect(doc.fieldSources['spec.http[0]']).toEqual({ file: 'f.yaml', line: 8, col: 5 });
    expect(doc.fieldSources['spec.http[0].route[0].destination.host']).toEqual({ file: 'f.yaml', line: 9, col: 21 });
  });

  it('leaves deep nesting and large documents to the full parser, which enforces the limits', () => {
    const deep = `${HEAD}data:\n${Array.from({ length: 70 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:`).join('\n')} end\n`;
    expect(takesFastPath(deep)).toBe(false);
    expectSameAsFullParser(deep);
    const big = `${HEAD}data:\n  blob: ${'x'.repeat(LIMITS.maxDocumentBytes)}\n`;
    expect(takesFastPath(big)).toBe(false);
  });

  it('resolves plain scalars as the YAML 1.2 core schema', () => {
    expect([resolvePlain('0o10'), resolvePlain('0x10'), resolvePlain('-.inf'), resolvePlain('1e2'), resolvePlain('NULL'), resolvePlain('yes')]).toEqual([8, 16, -Infinity, 100, null, 'yes']);
  });

  it('matches the full parser on every YAML file of the repository (sample repo and test fixtures)', () => {
    const files = [...yamlFiles(join(PROJECT_ROOT, 'versions')), ...yamlFiles(join(PROJECT_ROOT, 'kustomize')), ...yamlFiles(join(PROJECT_ROOT, 'test')), join(PROJECT_ROOT, 'trellis.yaml')];
    expect(files.length).toBeGreaterThan(50);
    let fast = 0;
    for (const path of files) {
      const text = readFileSync(path, 'utf8');
      if (!takesFastPath(text)) continue; // both sides would run the full parser
      fast++;
      expectSameAsFullParser(text, relative(PROJECT_ROOT, path));
    }
    expect(fast).toBeGreaterThan(files.length / 2);
  });
});

/** A small seeded generator, so a failure names a reproducible case. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

describe('fast YAML path under mutation', () => {
  it('matches the full parser on 300 randomly damaged copies of the sample repository files', () => {
    const base = join(PROJECT_ROOT, 'kustomize', 'base');
    const originals = readdirSync(base).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(base, f), 'utf8'));
    const inserts = [' ', '  ', '\n', ':', '- ', '#', "'", '"', '[', ']', '{', '}', ',', '|', '|-', '>', '&a', '*a', '!', '?', '\\', 'x', '1', '---\n', '...', '%', ': ', ' #'];
    const random = seeded(42);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    let fast = 0;
    for (let i = 0; i < 300; i++) {
      let text = pick(originals);
      for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
        const at = Math.floor(random() * text.length);
        text = random() < 0.6 ? text.slice(0, at) + pick(inserts) + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
      }
      if (!takesFastPath(text)) continue;
      fast++;
      const fastResult = parseDocuments(text, 'm.yaml');
      const full = parseDocuments(text, 'm.yaml', undefined, { fastPath: false });
      if (JSON.stringify(fastResult) !== JSON.stringify(full)) expect({ case: i, text, result: fastResult }).toEqual({ case: i, text, result: full });
    }
    expect(fast).toBeGreaterThan(50);
  });
});

describeWithIstioFixtures('fast YAML path on Istio fixtures', () => {
  it('matches the full parser on every fixture file', () => {
    const files = yamlFiles(SHARED_ISTIO);
    expect(files.length).toBeGreaterThan(20);
    let fast = 0;
    for (const path of files) {
      const text = readFileSync(path, 'utf8');
      if (!takesFastPath(text)) continue;
      fast++;
      expectSameAsFullParser(text, relative(SHARED_ISTIO, path));
    }
    expect(fast).toBeGreaterThan(files.length / 2);
  });
});
