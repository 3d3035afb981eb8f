import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { childPath, parentPath } from './field-path.js';
import { kindInfo } from './kinds.js';
import type { Diagnostic, MeshObject, ObjectMeta, SourceRef } from './object.js';
import { parseYamlFast } from './yaml-fast-path.js';

/** Largest config file accepted, in bytes (UTF-8). Real mesh files are a few KiB. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** Largest single YAML document accepted, in bytes (UTF-8). */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Most alias nodes (`*name`) accepted in one document: defeats "billion laughs" expansion. */
export const MAX_ALIAS_COUNT = 50;
/** Most documents accepted in one file. */
export const MAX_DOCUMENTS_PER_FILE = 10_000;
/** Deepest nesting of mappings/sequences accepted in one document, in levels. */
export const MAX_NESTING_DEPTH = 64;

export interface LoadLimits {
  maxFileBytes: number;
  maxDocumentBytes: number;
  maxAliasCount: number;
  maxDocuments: number;
  maxDepth: number;
}

export const DEFAULT_LOAD_LIMITS: Readonly<LoadLimits> = Object.freeze({
  maxFileBytes: MAX_FILE_BYTES,
  maxDocumentBytes: MAX_DOCUMENT_BYTES,
  maxAliasCount: MAX_ALIAS_COUNT,
  maxDocuments: MAX_DOCUMENTS_PER_FILE,
  maxDepth: MAX_NESTING_DEPTH,
});

export interface ParseResult {
  objects: MeshObject[];
  diagnostics: Diagnostic[];
}

const TOP_LEVEL_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

/**
 * Parses a multi-document YAML file into mesh objects with source positions.
 * Contract: if any document has a load error (syntax, duplicate key, alias bomb, size, shape), the
 * whole file is refused: `objects` is empty and `diagnostics` holds at least one error. Empty
 * documents are skipped. YAML warnings (e.g. unknown tags) are reported as warnings.
 */
export interface ParseOptions {
  /**
   * Read plain block YAML with the fast reader (src/mesh/yaml-fast-path.ts), falling back to the full
   * parser for anything else. Default true; false forces the full parser (tests compare the two).
   */
  fastPath?: boolean;
}

export function parseDocuments(text: string, file: string, limits?: Partial<LoadLimits>, options: ParseOptions = {}): ParseResult {
  const lim: LoadLimits = { ...DEFAULT_LOAD_LIMITS, ...limits };
  const diagnostics: Diagnostic[] = [];
  const fail = (line: number, col: number, message: string, extra: Partial<Diagnostic> = {}): void => {
    diagnostics.push({ severity: 'error', file, line, col, message, ...extra });
  };

  const fileBytes = Buffer.byteLength(text, 'utf8');
  if (fileBytes > lim.maxFileBytes) {
    fail(1, 1, `file is ${fileBytes} bytes, over the limit of ${lim.maxFileBytes} bytes; refused`);
    return { objects: [], diagnostics };
  }

  // The YAML parser recurses per flow level and slows down sharply on deep `[[[[` input, so deep
  // flow nesting is refused by a linear scan before parsing.
  const deepAt = flowNestingBeyond(text, lim.maxDepth);
  if (deepAt !== undefined) {
    const { line, col } = lineOf(text, deepAt);
    fail(line, col, `flow collections nest deeper than ${lim.maxDepth} levels; refused`);
    return { objects: [], diagnostics };
  }

  const fast = options.fastPath === false ? undefined : parseYamlFast(text, file, lim);
  if (fast) {
    const objects: MeshObject[] = [];
    for (const doc of fast) {
      // without `sequences`, the fast path yields mappings only
      const built = buildObject(doc.value as Record<string, unknown>, doc.source, doc.fieldSources, (path, message, extra) => {
        const ref = doc.fieldSources[path] ?? doc.source;
        fail(ref.line, ref.col, message, { fieldPath: path || undefined, ...extra });
      });
      if (built) objects.push(built);
    }
    if (diagnostics.length > 0) return { objects: [], diagnostics };
    return { objects, diagnostics };
  }

  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, {
    lineCounter,
    // Duplicate keys are found by measure() in linear time; yaml's check is quadratic per mapping.
    uniqueKeys: false,
    // Merge keys (`<<: *anchor`) as Kubernetes' YAML readers accept them; aliases stay capped.
    merge: true,
    prettyErrors: false,
    keepSourceTokens: false,
  });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const pos = (offset: number): { line: number; col: number } => lineCounter.linePos(offset);

  if (docs.length > lim.maxDocuments) {
    fail(1, 1, `file has ${docs.length} documents, over the limit of ${lim.maxDocuments}; refused`);
    return { objects: [], diagnostics };
  }

  const objects: MeshObject[] = [];
  for (const [index, doc] of docs.entries()) {
    const docStart = pos(doc.contents?.range?.[0] ?? doc.range[0]);
    const before = diagnostics.length;
    for (const err of doc.errors) {
      const at = pos(err.pos[0]);
      const what = err.code === 'DUPLICATE_KEY' ? 'duplicate key' : 'YAML syntax error';
      fail(at.line, at.col, `${what}: ${firstLine(err.message)}`);
    }
    if (diagnostics.length > before) continue;

    for (const warning of doc.warnings) {
      const at = pos(warning.pos[0]);
      diagnostics.push({ severity: 'warning', file, line: at.line, col: at.col, message: `YAML: ${firstLine(warning.message)}` });
    }

    const docBytes = Buffer.byteLength(text.slice(doc.range[0], doc.range[2]), 'utf8');
    if (docBytes > lim.maxDocumentBytes) {
      fail(docStart.line, docStart.col, `document ${index + 1} is ${docBytes} bytes, over the limit of ${lim.maxDocumentBytes} bytes; refused`);
      continue;
    }

    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue; // empty document

    const shape = measure(contents, lim);
    if (shape.aliases > lim.maxAliasCount) {
      fail(docStart.line, docStart.col, `document ${index + 1} uses ${shape.aliases} aliases, over the limit of ${lim.maxAliasCount} (possible alias bomb); refused`);
      continue;
    }
    if (shape.depth > lim.maxDepth) {
      fail(docStart.line, docStart.col, `document ${index + 1} nests deeper than ${lim.maxDepth} levels; refused`);
      continue;
    }
    if (shape.duplicateKey) {
      const dup = pos(shape.duplicateKey.offset);
      fail(dup.line, dup.col, `duplicate key: ${JSON.stringify(shape.duplicateKey.key)} appears twice in one mapping`);
      continue;
    }

    const at = contents.range ? pos(contents.range[0]) : docStart;
    const source: SourceRef = { file, line: at.line, col: at.col };
    if (!isMap(contents)) {
      fail(at.line, at.col, `document ${index + 1} is not a mapping (a Kubernetes object needs apiVersion, kind and metadata)`);
      continue;
    }

    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: lim.maxAliasCount });
    } catch (err) {
      fail(at.line, at.col, `document ${index + 1} could not be loaded: ${(err as Error).message}`);
      continue;
    }

    const fieldSources: Record<string, SourceRef> = {};
    recordPositions(contents, '', file, pos, fieldSources);
    const built = buildObject(value as Record<string, unknown>, source, fieldSources, (path, message, extra) => {
      const ref = fieldSources[path] ?? source;
      fail(ref.line, ref.col, message, { fieldPath: path || undefined, ...extra });
    });
    if (built) objects.push(built);
  }

  if (diagnostics.some((d) => d.severity === 'error')) return { objects: [], diagnostics };
  return { objects, diagnostics };
}

/** The position of `path` in `obj`, or of its nearest ancestor whose position is known. */
export function fieldSource(obj: Pick<MeshObject, 'source' | 'fieldSources'>, path: string): SourceRef {
  const sources = obj.fieldSources;
  let current: string | undefined = path;
  while (sources && current !== undefined && current !== '') {
    const ref = sources[current];
    if (ref) return ref;
    current = parentPath(current);
  }
  return obj.source ?? { file: '<unknown>', line: 1, col: 1 };
}

/**
 * Offset where `[`/`{` nesting first exceeds `max`, ignoring quoted scalars and comments; undefined
 * if it never does. A heuristic pre-check: the parser's own depth check (measure) stays authoritative.
 */
function flowNestingBeyond(text: string, max: number): number | undefined {
  let depth = 0;
  let quote: '"' | "'" | undefined;
  let prev = '\n';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
      else if (c === '\n' && quote === "'") quote = undefined; // unterminated: let the parser report it
    } else if (c === '#' && (prev === ' ' || prev === '\t' || prev === '\n')) {
      const end = text.indexOf('\n', i);
      if (end < 0) return undefined;
      i = end;
      prev = '\n';
      continue;
    } else if ((c === '"' || c === "'") && ' \t\n[{,:'.includes(prev)) quote = c;
    else if (c === '[' || c === '{') {
      if (++depth > max) return i;
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
    prev = c;
  }
  return undefined;
}

function lineOf(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

function firstLine(message: string): string {
  return message.split('\n')[0].trim();
}

interface Shape {
  aliases: number;
  depth: number;
  /** First repeated key in a mapping (yaml's own uniqueKeys check is quadratic per mapping). */
  duplicateKey?: { key: string; offset: number };
}

/** One linear walk: alias count, nesting depth and duplicate keys, stopping at the first limit hit. */
function measure(root: unknown, lim: LoadLimits): Shape {
  const shape: Shape = { aliases: 0, depth: 0 };
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [node, level] = stack.pop()!;
    if (level > shape.depth) shape.depth = level;
    if (shape.depth > lim.maxDepth || shape.aliases > lim.maxAliasCount) break;
    if (isAlias(node)) shape.aliases++;
    else if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key)) {
          const name = String(key.value);
          if (seen.has(name) && name !== '<<' && !shape.duplicateKey) shape.duplicateKey = { key: name, offset: key.range?.[0] ?? 0 };
          seen.add(name);
        }
        stack.push([pair.key, level + 1]);
        stack.push([pair.value, level + 1]);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push([item, level + 1]);
    }
  }
  return shape;
}

function recordPositions(
  node: unknown,
  path: string,
  file: string,
  pos: (offset: number) => { line: number; col: number },
  out: Record<string, SourceRef>,
): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined) continue;
      const keyNode = pair.key as YamlNode;
      const child = childPath(path, key);
      if (keyNode.range) {
        const at = pos(keyNode.range[0]);
        out[child] = { file, line: at.line, col: at.col };
      }
      recordPositions(pair.value, child, file, pos, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const child = childPath(path, i);
      const range = (item as YamlNode | null)?.range;
      if (range) {
        const at = pos(range[0]);
        out[child] = { file, line: at.line, col: at.col };
      }
      recordPositions(item, child, file, pos, out);
    });
  }
}

function buildObject(
  value: Record<string, unknown>,
  source: SourceRef,
  fieldSources: Record<string, SourceRef>,
  fail: (path: string, message: string, extra?: Partial<Diagnostic>) => void,
): MeshObject | undefined {
  const { apiVersion, kind, metadata } = value;
  const kindName = typeof kind === 'string' ? kind : undefined;
  let ok = true;
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    fail(apiVersion === undefined ? '' : 'apiVersion', 'missing or empty apiVersion (a string such as networking.istio.io/v1)', { kind: kindName });
    ok = false;
  }
  if (typeof kind !== 'string' || kind === '') {
    fail(kind === undefined ? '' : 'kind', 'missing or empty kind (a string such as VirtualService)');
    ok = false;
  }
  // istioctl accepts an unnamed IstioOperator (Istio's own profiles have none): its name is ''.
  const nameOptional = kindName !== undefined && kindInfo(kindName)?.nameOptional === true;
  const meta = (metadata ?? (nameOptional ? {} : metadata)) as ObjectMeta | null | undefined;
  if (nameOptional && meta && typeof meta === 'object' && !Array.isArray(meta) && meta.name === undefined) meta.name = '';
  if (meta === undefined || meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    fail(metadata === undefined ? '' : 'metadata', 'missing metadata (a mapping with at least a name)', { kind: kindName });
    return undefined;
  }
  if (typeof meta.name !== 'string' || (meta.name === '' && !nameOptional)) {
    fail(meta.name === undefined ? 'metadata' : 'metadata.name', 'missing or empty metadata.name', { kind: kindName });
    ok = false;
  }
  if (meta.namespace !== undefined && typeof meta.namespace !== 'string') {
    fail('metadata.namespace', 'metadata.namespace must be a string', { kind: kindName });
    ok = false;
  }
  if (!ok) return undefined;

  const obj: MeshObject = {
    apiVersion: apiVersion as string,
    kind: kind as string,
    metadata: meta,
    spec: value.spec ?? {},
    source,
    fieldSources,
  };
  if (value.status !== undefined) obj.status = value.status;
  const extra = Object.keys(value).filter((key) => !TOP_LEVEL_FIELDS.has(key));
  if (extra.length > 0) obj.extraFields = Object.fromEntries(extra.map((key) => [key, value[key]]));
  return obj;
}
