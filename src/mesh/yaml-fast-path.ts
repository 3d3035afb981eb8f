/**
 * A fast reader for the plain block YAML that config repositories are made of: block mappings and
 * sequences, single-line plain and quoted scalars, `|`/`|-` literals, single-line flow collections,
 * comments and `---` separators. It is about ten times faster than the `yaml` package's document
 * model, which dominated the render time of large meshes.
 *
 * It never reports an error: for anything outside its subset, and for anything that might be an
 * error (duplicate keys, tabs, anchors, aliases, tags, multi-line scalars, odd indentation, large
 * documents, deep nesting, ...), it answers `undefined` and the caller parses the file with `yaml`,
 * so every error message and every corner of YAML 1.2 stays exactly as the full parser has it.
 * Values follow the YAML 1.2 core schema as `yaml` resolves them; positions are those `yaml` gives
 * (start of each mapping key and sequence item), as a differential test checks.
 */
import { childPath } from './field-path.js';
import type { SourceRef } from './object.js';

export interface FastDocument {
  value: unknown;
  /** Start of the document's top-level mapping (or sequence). */
  source: SourceRef;
  fieldSources: Record<string, SourceRef>;
}

export interface FastPathLimits {
  maxDepth: number;
  maxDocumentBytes: number;
  maxDocuments: number;
}

/** Characters the fast path leaves to the full parser: tabs, CR, control characters, BOM, Unicode line breaks. */
const UNSUPPORTED_CHARS = /[\x00-\x09\x0B-\x1F\x7F\uFEFF\u0085\u2028\u2029]/;
const MAX_IMPLICIT_KEY = 1000;

/** Thrown (never escapes this module) when the input leaves the supported subset. */
const BAIL: unique symbol = Symbol('bail');

export interface FastPathOptions {
  /** Accept a top-level sequence (patch files), not only a mapping (Kubernetes objects). */
  sequences?: boolean;
  /**
   * Also record where each scalar value starts, under `path#value`, or `path#block` for a block
   * scalar (`|`): the kustomization reader locates inline patches with them.
   */
  scalarPositions?: boolean;
}

/** The documents of `text` (empty ones skipped), or `undefined` when the full parser must read it. */
export function parseYamlFast(text: string, file: string, limits: FastPathLimits, options: FastPathOptions = {}): FastDocument[] | undefined {
  if (UNSUPPORTED_CHARS.test(text)) return undefined;
  try {
    return new FastReader(text, file, limits, options).documents();
  } catch (err) {
    if (err === BAIL) return undefined;
    throw err;
  }
}

const enum Ch {
  Space = 32,
  Hash = 35,
  Dash = 45,
  Colon = 58,
  Newline = 10,
}

class FastReader {
  /** Start offset of each line, plus one past the end. */
  private readonly starts: number[] = [0];
  private end = 0;
  private fieldSources: Record<string, SourceRef> = {};

  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly limits: FastPathLimits,
    private readonly options: FastPathOptions,
  ) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
    if (this.starts[this.starts.length - 1] <= text.length) this.starts.push(text.length + 1);
  }

  private get lineCount(): number {
    return this.starts.length - 1;
  }

  documents(): FastDocument[] {
    const out: FastDocument[] = [];
    let first = 0;
    let segments = 0;
    const flush = (last: number): void => {
      if (++segments > this.limits.maxDocuments / 2) throw BAIL;
      const doc = this.document(first, last);
      if (doc) out.push(doc);
    };
    for (let i = 0; i < this.lineCount; i++) {
      const s = this.starts[i];
      const c = this.text.charCodeAt(s);
      if (c === 37 /* % */) throw BAIL;
      if ((c === Ch.Dash || c === 46) /* - . */ && this.text.startsWith(c === Ch.Dash ? '---' : '...', s)) {
        const after = this.text.charCodeAt(s + 3);
        if (!(after === Ch.Newline || after === Ch.Space || s + 3 >= this.text.length)) continue; // `---x` is a plain scalar
        if (c === 46) throw BAIL;
        if (!this.restIsBlank(s + 3, this.lineEnd(i))) throw BAIL;
        flush(i);
        first = i + 1;
      }
    }
    flush(this.lineCount);
    return out;
  }

  private document(first: number, last: number): FastDocument | undefined {
    const bytesUpperBound = (this.starts[last] - this.starts[first]) * 3;
    if (bytesUpperBound > this.limits.maxDocumentBytes / 2) {
      const bytes = Buffer.byteLength(this.text.slice(this.starts[first], this.starts[last]), 'utf8');
      if (bytes > this.limits.maxDocumentBytes / 2) throw BAIL;
    }
    this.end = last;
    this.fieldSources = {};
    const line = this.nextContent(first);
    if (line >= last) return undefined;
    const indent = this.indentOf(line);
    const start = this.starts[line] + indent;
    let parsed: [unknown, number];
    if (this.options.sequences && this.isSeqEntry(start)) parsed = this.sequence(line, indent, '', 1);
    else if (this.keyAt(start, this.lineEnd(line))) parsed = this.mapping(line, indent, '', 1);
    else throw BAIL; // a document that is not a mapping: the full parser says what is wrong
    const [value, next] = parsed;
    if (this.nextContent(next) < last) throw BAIL;
    return { value, source: this.ref(line, indent), fieldSources: this.fieldSources };
  }

  // ---- lines -------------------------------------------------------------------------------

  private lineEnd(line: number): number {
    return this.starts[line + 1] - 1;
  }

  private indentOf(line: number): number {
    const s = this.starts[line];
    let p = s;
    while (this.text.charCodeAt(p) === Ch.Space) p++;
    return p - s;
  }

  /** True when [from, to) holds only spaces, optionally followed by a comment (`#` after a space). */
  private restIsBlank(from: number, to: number): boolean {
    let p = from;
    while (p < to && this.text.charCodeAt(p) === Ch.Space) p++;
    return p >= to || (this.text.charCodeAt(p) === Ch.Hash && this.text.charCodeAt(p - 1) === Ch.Space);
  }

  /** First line at or after `line` that is neither blank nor a comment (or `end`). */
  private nextContent(line: number): number {
    for (let i = line; i < this.end; i++) {
      const s = this.starts[i];
      const e = this.lineEnd(i);
      let p = s;
      while (p < e && this.text.charCodeAt(p) === Ch.Space) p++;
      if (p < e && this.text.charCodeAt(p) !== Ch.Hash) return i;
    }
    return this.end;
  }

  private ref(line: number, col: number): SourceRef {
    return { file: this.file, line: line + 1, col: col + 1 };
  }

  private record(path: string, line: number, offset: number): void {
    this.fieldSources[path] = { file: this.file, line: line + 1, col: offset - this.starts[line] + 1 };
  }

  private recordScalar(path: string, suffix: '#value' | '#block', line: number, offset: number): void {
    if (this.options.scalarPositions) this.record(`${path}${suffix}`, line, offset);
  }

  private isSeqEntry(offset: number): boolean {
    if (this.text.charCodeAt(offset) !== Ch.Dash) return false;
    const next = this.text.charCodeAt(offset + 1);
    return next === Ch.Space || next === Ch.Newline || offset + 1 >= this.text.length;
  }

  // ---- block collections -------------------------------------------------------------------

  /** A block mapping whose first key starts at column `col` of `line`; later keys sit at indent `col`. */
  private mapping(line: number, col: number, path: string, depth: number): [Record<string, unknown>, number] {
    if (depth + 1 >= this.limits.maxDepth) throw BAIL;
    const out: Record<string, unknown> = {};
    let i = line;
    let start = this.starts[line] + col;
    for (;;) {
      const eol = this.lineEnd(i);
      const key = this.keyAt(start, eol);
      if (!key) throw BAIL;
      if (key.name === '__proto__' || key.name === '<<' || Object.hasOwn(out, key.name)) throw BAIL;
      const child = childPath(path, key.name);
      this.record(child, i, start);
      const [value, next] = this.valueAfter(i, key.after, col, child, depth, true);
      out[key.name] = value;
      i = this.nextContent(next);
      if (i >= this.end) return [out, i];
      const indent = this.indentOf(i);
      if (indent < col) return [out, i];
      if (indent > col) throw BAIL;
      start = this.starts[i] + indent;
      if (this.isSeqEntry(start)) throw BAIL;
    }
  }

  /** A block sequence whose first `-` is at column `col` of `line`; later entries sit at indent `col`. */
  private sequence(line: number, col: number, path: string, depth: number): [unknown[], number] {
    if (depth + 1 >= this.limits.maxDepth) throw BAIL;
    const out: unknown[] = [];
    let i = line;
    for (;;) {
      const child = childPath(path, out.length);
      const [value, next] = this.valueAfter(i, this.starts[i] + col + 1, col, child, depth, false);
      out.push(value);
      i = this.nextContent(next);
      if (i >= this.end) return [out, i];
      const indent = this.indentOf(i);
      if (indent < col) return [out, i];
      if (indent > col) throw BAIL;
      if (!this.isSeqEntry(this.starts[i] + indent)) return [out, i];
    }
  }

  /**
   * The value after a mapping key's `:` or a sequence's `-` (at offset `from` on `line`), in a collection at
   * indent `parent`. Sequence items also record their own position. Returns the value and the next line to read.
   */
  private valueAfter(line: number, from: number, parent: number, path: string, depth: number, inMapping: boolean): [unknown, number] {
    const eol = this.lineEnd(line);
    let p = from;
    while (p < eol && this.text.charCodeAt(p) === Ch.Space) p++;
    if (p >= eol || (this.text.charCodeAt(p) === Ch.Hash && p > from)) {
      // the value is a block on the following lines (or null)
      const next = this.nextContent(line + 1);
      if (next < this.end) {
        const indent = this.indentOf(next);
        const start = this.starts[next] + indent;
        if (indent > parent) return this.blockNode(next, indent, path, depth, !inMapping);
        if (indent === parent && inMapping && this.isSeqEntry(start)) return this.sequence(next, indent, path, depth + 1);
      }
      // a null sequence item, or an empty value whose position would be needed: left to the full parser
      if (!inMapping || this.options.scalarPositions) throw BAIL;
      return [null, line + 1];
    }
    const col = p - this.starts[line];
    const c = this.text.charCodeAt(p);
    if (!inMapping) {
      this.record(path, line, p);
      if (this.isSeqEntry(p)) return this.sequence(line, col, path, depth + 1);
      if (this.keyAt(p, eol)) return this.mapping(line, col, path, depth + 1);
    }
    if (c === 124 /* | */) {
      this.recordScalar(path, '#block', line, p);
      return this.literal(line, p, parent);
    }
    if (c === 91 /* [ */ || c === 123 /* { */) {
      const [value, after] = this.flow(p, eol, path, line, depth + 1);
      if (!this.restIsBlank(after, eol)) throw BAIL;
      return [value, line + 1];
    }
    if (c === 34 /* " */ || c === 39 /* ' */) {
      const [value, after] = this.quoted(p, eol);
      if (!this.restIsBlank(after, eol)) throw BAIL;
      this.recordScalar(path, '#value', line, p);
      return [value, line + 1];
    }
    if (startsPlainBadly(c, this.text.charCodeAt(p + 1))) throw BAIL;
    const [raw] = this.plainInBlock(p, eol);
    if (raw.includes(': ') || raw.endsWith(':')) throw BAIL;
    this.recordScalar(path, '#value', line, p);
    return [resolvePlain(raw), line + 1];
  }

  /** A block node starting a line (`col` is its indent): a sequence, or a mapping. */
  private blockNode(line: number, col: number, path: string, depth: number, recordItem: boolean): [unknown, number] {
    const start = this.starts[line] + col;
    if (recordItem) this.record(path, line, start);
    if (this.isSeqEntry(start)) return this.sequence(line, col, path, depth + 1);
    if (this.keyAt(start, this.lineEnd(line))) return this.mapping(line, col, path, depth + 1);
    throw BAIL; // a scalar on its own line, possibly spanning several
  }

  /** A plain scalar in block context: up to a comment or the end of the line, trimmed. */
  private plainInBlock(p: number, eol: number): [string, number] {
    let q = p;
    while (q < eol) {
      const c = this.text.charCodeAt(q);
      if (c === Ch.Hash && this.text.charCodeAt(q - 1) === Ch.Space) break;
      q++;
    }
    let e = q;
    while (e > p && this.text.charCodeAt(e - 1) === Ch.Space) e--;
    return [this.text.slice(p, e), q];
  }

  /** An implicit key at `p` (plain or quoted, followed by `:` and a space or the end of the line). */
  private keyAt(p: number, eol: number): { name: string; after: number } | undefined {
    const c = this.text.charCodeAt(p);
    if (c === 34 || c === 39) {
      let quoted: [string, number];
      try {
        quoted = this.quoted(p, eol);
      } catch (err) {
        if (err === BAIL) return undefined;
        throw err;
      }
      let q = quoted[1];
      while (q < eol && this.text.charCodeAt(q) === Ch.Space) q++;
      if (this.text.charCodeAt(q) !== Ch.Colon || q >= eol) return undefined;
      const after = this.text.charCodeAt(q + 1);
      if (!(q + 1 >= eol || after === Ch.Space)) return undefined;
      if (q - p > MAX_IMPLICIT_KEY) throw BAIL;
      return { name: quoted[0], after: q + 1 };
    }
    if (startsPlainBadly(c, this.text.charCodeAt(p + 1)) || c === Ch.Dash) return undefined;
    for (let q = p; q < eol; q++) {
      const d = this.text.charCodeAt(q);
      if (d === Ch.Hash && this.text.charCodeAt(q - 1) === Ch.Space) return undefined;
      if (d === Ch.Colon && (q + 1 >= eol || this.text.charCodeAt(q + 1) === Ch.Space)) {
        let e = q;
        while (e > p && this.text.charCodeAt(e - 1) === Ch.Space) e--;
        const name = this.text.slice(p, e);
        if (q - p > MAX_IMPLICIT_KEY || typeof resolvePlain(name) !== 'string') throw BAIL;
        return { name, after: q + 1 };
      }
    }
    return undefined;
  }

  // ---- scalars -----------------------------------------------------------------------------

  /** A single-line quoted scalar at `p`; returns its value and the offset after the closing quote. */
  private quoted(p: number, eol: number): [string, number] {
    const quote = this.text.charCodeAt(p);
    if (quote === 39) {
      let out = '';
      let from = p + 1;
      for (let q = p + 1; q < eol; q++) {
        if (this.text.charCodeAt(q) !== 39) continue;
        if (this.text.charCodeAt(q + 1) === 39 && q + 1 < eol) {
          out += this.text.slice(from, q + 1);
          from = q + 2;
          q++;
          continue;
        }
        return [out + this.text.slice(from, q), q + 1];
      }
      throw BAIL;
    }
    let out = '';
    let from = p + 1;
    for (let q = p + 1; q < eol; q++) {
      const c = this.text.charCodeAt(q);
      if (c === 34) return [out + this.text.slice(from, q), q + 1];
      if (c !== 92 /* \ */) continue;
      out += this.text.slice(from, q);
      const e = this.text[q + 1];
      if (q + 1 >= eol) throw BAIL;
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        q += 1;
      } else if (e === 'u' || e === 'x') {
        const len = e === 'u' ? 4 : 2;
        const hex = this.text.slice(q + 2, q + 2 + len);
        if (hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) throw BAIL;
        out += String.fromCharCode(parseInt(hex, 16));
        q += 1 + len;
      } else throw BAIL;
      from = q + 1;
    }
    throw BAIL;
  }

  /** `|` or `|-` and its lines; anything fancier (indicators, keep, folding) goes to the full parser. */
  private literal(line: number, p: number, parent: number): [string, number] {
    const eol = this.lineEnd(line);
    let q = p + 1;
    const strip = this.text.charCodeAt(q) === Ch.Dash;
    if (strip) q++;
    if (q < eol && this.text.charCodeAt(q) !== Ch.Space) throw BAIL;
    if (!this.restIsBlank(q, eol)) throw BAIL;
    let first = line + 1;
    let blankWidth = 0;
    while (first < this.end && this.isBlankLine(first)) {
      blankWidth = Math.max(blankWidth, this.lineEnd(first) - this.starts[first]);
      first++;
    }
    if (first >= this.end) throw BAIL;
    const indent = this.indentOf(first);
    if (indent <= parent || blankWidth > indent) throw BAIL;
    const lines: string[] = [];
    for (let i = line + 1; i < first; i++) lines.push('');
    let i = first;
    for (; i < this.end; i++) {
      const s = this.starts[i];
      const e = this.lineEnd(i);
      if (this.isBlankLine(i)) {
        if (e - s > indent) throw BAIL;
        lines.push('');
        continue;
      }
      if (this.indentOf(i) < indent) break;
      lines.push(this.text.slice(s + indent, e));
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return [lines.join('\n') + (strip ? '' : '\n'), i];
  }

  private isBlankLine(line: number): boolean {
    const e = this.lineEnd(line);
    for (let p = this.starts[line]; p < e; p++) if (this.text.charCodeAt(p) !== Ch.Space) return false;
    return true;
  }

  // ---- flow collections (one line) ---------------------------------------------------------

  private flow(p: number, eol: number, path: string, line: number, depth: number): [unknown, number] {
    if (depth + 1 >= this.limits.maxDepth) throw BAIL;
    const isSeq = this.text.charCodeAt(p) === 91;
    const close = isSeq ? 93 : 125;
    let q = this.skipSpaces(p + 1, eol);
    if (this.text.charCodeAt(q) === close) return [isSeq ? [] : {}, q + 1];
    const seq: unknown[] = [];
    const map: Record<string, unknown> = {};
    for (;;) {
      if (q >= eol) throw BAIL;
      if (isSeq) {
        const child = childPath(path, seq.length);
        this.record(child, line, q);
        const [value, after] = this.flowNode(q, eol, child, line, depth);
        seq.push(value);
        q = this.skipSpaces(after, eol);
        if (this.text.charCodeAt(q) === Ch.Colon) throw BAIL; // a single-pair mapping
      } else {
        const keyStart = q;
        const c = this.text.charCodeAt(q);
        let name: string;
        let after: number;
        if (c === 34 || c === 39) [name, after] = this.quoted(q, eol);
        else {
          [name, after] = this.flowPlain(q, eol);
          if (typeof resolvePlain(name) !== 'string') throw BAIL;
        }
        if (name === '__proto__' || name === '<<' || Object.hasOwn(map, name)) throw BAIL;
        q = this.skipSpaces(after, eol);
        if (this.text.charCodeAt(q) !== Ch.Colon) throw BAIL;
        if (this.text.charCodeAt(q + 1) !== Ch.Space) throw BAIL;
        q = this.skipSpaces(q + 1, eol);
        const child = childPath(path, name);
        this.record(child, line, keyStart);
        const d = this.text.charCodeAt(q);
        if (d === 44 || d === close) throw BAIL; // an empty value
        const [value, end] = this.flowNode(q, eol, child, line, depth);
        map[name] = value;
        q = this.skipSpaces(end, eol);
      }
      const sep = this.text.charCodeAt(q);
      if (sep === close) return [isSeq ? seq : map, q + 1];
      if (sep !== 44 /* , */) throw BAIL;
      q = this.skipSpaces(q + 1, eol);
      if (this.text.charCodeAt(q) === close) throw BAIL; // a trailing comma
    }
  }

  private flowNode(q: number, eol: number, path: string, line: number, depth: number): [unknown, number] {
    const c = this.text.charCodeAt(q);
    if (c === 91 || c === 123) return this.flow(q, eol, path, line, depth + 1);
    this.recordScalar(path, '#value', line, q);
    if (c === 34 || c === 39) return this.quoted(q, eol);
    const [raw, after] = this.flowPlain(q, eol);
    return [resolvePlain(raw), after];
  }

  /** A plain scalar inside a flow collection: up to `,`, a bracket, `: ` or a comment. */
  private flowPlain(p: number, eol: number): [string, number] {
    if (startsPlainBadly(this.text.charCodeAt(p), this.text.charCodeAt(p + 1)) || this.text.charCodeAt(p) === Ch.Dash) throw BAIL;
    let q = p;
    for (; q < eol; q++) {
      const c = this.text.charCodeAt(q);
      if (c === 44 || c === 93 || c === 125) break;
      if (c === 91 || c === 123) throw BAIL;
      if (c === Ch.Colon) {
        const next = this.text.charCodeAt(q + 1);
        if (next === Ch.Space || next === 44 || next === 93 || next === 125 || q + 1 >= eol) break;
      }
      if (c === Ch.Hash && this.text.charCodeAt(q - 1) === Ch.Space) throw BAIL;
    }
    let e = q;
    while (e > p && this.text.charCodeAt(e - 1) === Ch.Space) e--;
    if (e === p) throw BAIL;
    return [this.text.slice(p, e), q];
  }

  private skipSpaces(p: number, eol: number): number {
    while (p < eol && this.text.charCodeAt(p) === Ch.Space) p++;
    return p;
  }
}

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', '"': '"', '/': '/', n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', f: '\f' };

/**
 * Characters a plain scalar may not start with (YAML indicators), or that the fast path leaves to the full
 * parser: `-`, `?` and `:` start a plain scalar only when followed by a non-space; they are refused here.
 */
function startsPlainBadly(c: number, next: number): boolean {
  switch (c) {
    case 33: // !
    case 34: // "
    case 35: // #
    case 37: // %
    case 38: // &
    case 39: // '
    case 42: // *
    case 44: // ,
    case 58: // :
    case 62: // >
    case 63: // ?
    case 64: // @
    case 91: // [
    case 93: // ]
    case 96: // `
    case 123: // {
    case 124: // |
    case 125: // }
      return true;
    case 45: // -
      return next === 32 || next === 10 || Number.isNaN(next);
    default:
      return false;
  }
}

const MAYBE_SPECIAL = /^[-+.~0-9nNtTfF]/;
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** A plain scalar's value under the YAML 1.2 core schema, resolved in the order `yaml` tries its tags. */
export function resolvePlain(s: string): unknown {
  if (s !== '' && !MAYBE_SPECIAL.test(s)) return s;
  if (NULL.test(s)) return null;
  if (BOOL.test(s)) return s[0] === 't' || s[0] === 'T';
  if (INT_OCT.test(s)) return parseInt(s.substring(2), 8);
  if (INT.test(s)) return parseInt(s, 10);
  if (INT_HEX.test(s)) return parseInt(s.substring(2), 16);
  if (FLOAT_NAN.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (FLOAT_EXP.test(s)) return parseFloat(s);
  if (FLOAT.test(s)) return parseFloat(s);
  return s;
}
