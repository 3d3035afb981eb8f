import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, Scalar } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { childPath } from '../../mesh/field-path.js';
import { MAX_ALIAS_COUNT, MAX_DOCUMENT_BYTES, MAX_DOCUMENTS_PER_FILE, MAX_NESTING_DEPTH } from '../../mesh/load.js';
import { parseYamlFast, type FastPathLimits } from '../../mesh/yaml-fast-path.js';
import type { SourceRef } from '../../mesh/object.js';
import { RenderError } from './errors.js';

/** One YAML document with the position of the document and of every field (paths as in src/mesh/field-path). */
export interface SourcedValue {
  value: unknown;
  source: SourceRef;
  fieldSources: Record<string, SourceRef>;
}

/** The fast reader leaves anything near these limits to the full parser below. */
const FAST_PATH_LIMITS: FastPathLimits = { maxDepth: MAX_NESTING_DEPTH, maxDocumentBytes: MAX_DOCUMENT_BYTES, maxDocuments: MAX_DOCUMENTS_PER_FILE };

/** Where an embedded text (an inline patch) starts inside its file, so positions point into that file. */
export interface TextOrigin {
  file: string;
  /** Added to every 1-based line of the embedded text. */
  lineOffset?: number;
  /** Added to every column of the embedded text. */
  colOffset?: number;
}

/**
 * Parses YAML that is not a Kubernetes object (kustomization files, patches), with the same hostile-input
 * limits as the mesh loader. Throws RenderError naming file:line for syntax errors, duplicate keys and alias bombs.
 */
export function parseYamlWithSources(text: string, origin: TextOrigin, options: { fastPath?: boolean } = {}): SourcedValue[] {
  const { file } = origin;
  const lineOffset = origin.lineOffset ?? 0;
  const colOffset = origin.colOffset ?? 0;
  const fast = options.fastPath === false ? undefined : parseYamlFast(text, file, FAST_PATH_LIMITS, { sequences: true, scalarPositions: true });
  if (fast) {
    if (lineOffset === 0 && colOffset === 0) return fast;
    const shift = (ref: SourceRef): SourceRef => ({ file, line: ref.line + lineOffset, col: ref.col + colOffset });
    return fast.map((doc) => ({
      value: doc.value,
      source: shift(doc.source),
      fieldSources: Object.fromEntries(Object.entries(doc.fieldSources).map(([path, ref]) => [path, shift(ref)])),
    }));
  }
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const pos = (offset: number): SourceRef => {
    const at = lineCounter.linePos(offset);
    return { file, line: at.line + lineOffset, col: at.col + colOffset };
  };
  const out: SourcedValue[] = [];
  for (const doc of Array.isArray(docs) ? docs : []) {
    const first = doc.errors[0];
    if (first) {
      const at = pos(first.pos[0]);
      const what = first.code === 'DUPLICATE_KEY' ? 'duplicate key' : 'YAML syntax error';
      throw RenderError.at('YamlSyntax', at, `${what}: ${first.message.split('\n')[0]}`);
    }
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue;
    const source = contents.range ? pos(contents.range[0]) : pos(doc.range[0]);
    const shape = measure(contents);
    if (shape.aliases > MAX_ALIAS_COUNT) {
      throw RenderError.at('YamlSyntax', source, `document uses more than ${MAX_ALIAS_COUNT} aliases (possible alias bomb); refused`);
    }
    if (shape.depth > MAX_NESTING_DEPTH) {
      throw RenderError.at('YamlSyntax', source, `document nests deeper than ${MAX_NESTING_DEPTH} levels; refused`);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      throw RenderError.at('YamlSyntax', source, `document could not be loaded: ${(err as Error).message}`);
    }
    const fieldSources: Record<string, SourceRef> = {};
    recordPositions(contents, '', pos, fieldSources);
    out.push({ value, source, fieldSources });
  }
  return out;
}

/** Origin of an embedded scalar string located at `at` in its file (block scalars start on the next line). */
export function embeddedOrigin(at: SourceRef, fileText: string | undefined, isBlock: boolean): TextOrigin {
  if (!isBlock) return { file: at.file, lineOffset: at.line - 1, colOffset: at.col - 1 };
  let colOffset = 0;
  if (fileText !== undefined) {
    const next = fileText.split('\n')[at.line] ?? '';
    colOffset = next.length - next.trimStart().length;
  }
  return { file: at.file, lineOffset: at.line, colOffset };
}

function measure(root: unknown): { aliases: number; depth: number } {
  let aliases = 0;
  let depth = 0;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [node, level] = stack.pop()!;
    if (level > depth) depth = level;
    if (depth > MAX_NESTING_DEPTH || aliases > MAX_ALIAS_COUNT) break;
    if (isAlias(node)) aliases++;
    else if (isMap(node) || isSeq(node)) for (const item of node.items) stack.push([item, level + 1]);
    else if (isPair(node)) {
      stack.push([node.key, level]);
      stack.push([node.value, level]);
    }
  }
  return { aliases, depth };
}

/** Records, besides positions, whether a string value was a block scalar (`|`, `>`), under the key `path + "#block"`. */
function recordPositions(node: unknown, path: string, pos: (offset: number) => SourceRef, out: Record<string, SourceRef>): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const child = childPath(path, String(pair.key.value));
      const keyNode = pair.key as YamlNode;
      if (keyNode.range) out[child] = pos(keyNode.range[0]);
      const value = pair.value;
      if (isScalar(value) && value.range && (value.type === Scalar.BLOCK_LITERAL || value.type === Scalar.BLOCK_FOLDED)) {
        out[`${child}#block`] = pos(value.range[0]);
      } else if (isScalar(value) && value.range) {
        out[`${child}#value`] = pos(value.range[0]);
      }
      recordPositions(value, child, pos, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const child = childPath(path, i);
      const range = (item as YamlNode | null)?.range;
      if (range) out[child] = pos(range[0]);
      if (isScalar(item) && item.range && (item.type === Scalar.BLOCK_LITERAL || item.type === Scalar.BLOCK_FOLDED)) {
        out[`${child}#block`] = pos(item.range[0]);
      } else if (isScalar(item) && item.range) {
        out[`${child}#value`] = pos(item.range[0]);
      }
      recordPositions(item, child, pos, out);
    });
  }
}
