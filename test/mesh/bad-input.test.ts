import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { formatDiagnostic } from '../../src/mesh/object.js';
import type { Diagnostic } from '../../src/mesh/object.js';
import { MAX_DOCUMENT_BYTES, MAX_FILE_BYTES, MAX_NESTING_DEPTH, parseDocuments } from '../../src/mesh/load.js';
import { validateObjects, validateObjectSchema } from '../../src/mesh/validate.js';
import { PROJECT_ROOT } from '../helpers/shared.js';

/**
 * The bad-input corpus is data (STYLE.md §5): one case per file in test/fixtures/bad-input, with
 * its expectation in leading comments:
 *   # expect: <substring of the message>
 *   # line: <1-based line the diagnostic must name>
 *   # level: load | schema | semantic   (which pass must catch it)
 *   # severity: warning                 (optional; default error)
 */
const CORPUS = join(PROJECT_ROOT, 'test', 'fixtures', 'bad-input');

interface Case {
  name: string;
  file: string;
  text: string;
  expect: string;
  line: number;
  level: 'load' | 'schema' | 'semantic';
  severity: 'error' | 'warning';
}

function header(text: string, key: string): string | undefined {
  return new RegExp(`^# ${key}: (.*)$`, 'm').exec(text)?.[1].trim();
}

function loadCases(): Case[] {
  return readdirSync(CORPUS)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const text = readFileSync(join(CORPUS, f), 'utf8');
      const level = header(text, 'level') as Case['level'];
      const expectText = header(text, 'expect');
      const line = Number(header(text, 'line'));
      if (!expectText || !Number.isInteger(line) || !['load', 'schema', 'semantic'].includes(level)) {
        throw new Error(`${f}: needs "# expect:", "# line:" and "# level:" headers`);
      }
      return { name: f.replace(/\.yaml$/, ''), file: `bad-input/${f}`, text, expect: expectText, line, level, severity: header(text, 'severity') === 'warning' ? 'warning' : 'error' };
    });
}

const cases = loadCases();

function findings(c: Case): { loadErrors: Diagnostic[]; full: Diagnostic[]; schemaErrors: Diagnostic[]; fullErrors: Diagnostic[] } {
  const { objects, diagnostics } = parseDocuments(c.text, c.file);
  const loadErrors = diagnostics.filter((d) => d.severity === 'error');
  const result = validateObjects(objects);
  const schemaErrors = objects.flatMap((o) => validateObjectSchema(o).errors);
  return { loadErrors, full: [...diagnostics, ...result.errors, ...result.warnings], schemaErrors, fullErrors: result.errors };
}

describe('bad-input corpus', () => {
  it('has at least 35 distinct cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(35);
    expect(new Set(cases.map((c) => c.expect)).size).toBeGreaterThanOrEqual(35);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { loadErrors, full } = findings(c);
    const match = full.find((d) => d.severity === c.severity && d.message.includes(c.expect));
    if (!match) throw new Error(`no ${c.severity} containing ${JSON.stringify(c.expect)}; got:\n${full.map(formatDiagnostic).join('\n')}`);
    expect({ file: match.file, line: match.line }).toEqual({ file: c.file, line: c.line });
    if (c.level === 'load') {
      expect(parseDocuments(c.text, c.file).objects).toEqual([]);
      expect(loadErrors.length).toBeGreaterThan(0);
    } else {
      expect(loadErrors).toEqual([]);
      expect(match.kind).toBeTruthy();
      expect(match.name).toBeTruthy();
    }
  });
});

describe('differential: the schema pass and the full validator agree at the schema level', () => {
  it.each(cases.filter((c) => c.level !== 'load').map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const { schemaErrors, fullErrors } = findings(c);
    if (c.severity === 'warning') {
      expect(schemaErrors).toEqual([]);
      expect(fullErrors).toEqual([]);
    } else if (c.level === 'schema') {
      // Schema-level cases fail both passes; the full validator keeps the schema's findings.
      expect(schemaErrors.length).toBeGreaterThan(0);
      expect(fullErrors.length).toBeGreaterThan(0);
      for (const e of schemaErrors) expect(fullErrors).toContainEqual(e);
    } else {
      // Semantic cases are schema-valid: only the semantic pass rejects them.
      expect(schemaErrors.map(formatDiagnostic)).toEqual([]);
      expect(fullErrors.length).toBeGreaterThan(0);
    }
  });
});

describe('generated hostile input', () => {
  it('refuses a file over MAX_FILE_BYTES without parsing it', () => {
    const doc = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: "';
    const text = `${doc}${'x'.repeat(MAX_FILE_BYTES)}"\n`;
    const { objects, diagnostics } = parseDocuments(text, 'big.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics).toEqual([expect.objectContaining({ severity: 'error', file: 'big.yaml', line: 1, message: expect.stringContaining(`over the limit of ${MAX_FILE_BYTES} bytes`) })]);
  });

  it('refuses one document over MAX_DOCUMENT_BYTES, and with it the file', () => {
    const small = 'apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n';
    const big = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: "${'x'.repeat(MAX_DOCUMENT_BYTES)}"\n`;
    const { objects, diagnostics } = parseDocuments(`${small}---\n${big}`, 'docs.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics[0]).toMatchObject({ line: 5, message: expect.stringContaining('document 2 is') });
  });

  it('honours limits passed by the caller', () => {
    const { diagnostics } = parseDocuments('a: 1\n', 'f.yaml', { maxFileBytes: 3 });
    expect(diagnostics[0].message).toMatch(/over the limit of 3 bytes/);
  });

  it('refuses nesting deeper than MAX_NESTING_DEPTH', () => {
    const deep = `${'['.repeat(MAX_NESTING_DEPTH + 5)}${']'.repeat(MAX_NESTING_DEPTH + 5)}`;
    const { objects, diagnostics } = parseDocuments(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: ${deep}\n`, 'deep.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics[0]).toMatchObject({ line: 4, message: expect.stringMatching(/nest deeper than 64 levels/) });
  });

  it('refuses deep block nesting too', () => {
    const lines = ['apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: deep}', 'data:'];
    for (let i = 1; i <= MAX_NESTING_DEPTH + 2; i++) lines.push(`${' '.repeat(i)}k${i}:`);
    const { objects, diagnostics } = parseDocuments(`${lines.join('\n')} end\n`, 'deep.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics[0].message).toMatch(/nests deeper than 64 levels/);
  });

  it('does not count brackets inside quoted strings or comments', () => {
    const brackets = '['.repeat(MAX_NESTING_DEPTH * 2);
    const text = `apiVersion: v1\nkind: ConfigMap  # ${brackets}\nmetadata: {name: q}\ndata:\n  a: "${brackets}"\n  b: '${brackets}'\n`;
    const { objects, diagnostics } = parseDocuments(text, 'q.yaml');
    expect(diagnostics).toEqual([]);
    expect(objects).toHaveLength(1);
  });
});
