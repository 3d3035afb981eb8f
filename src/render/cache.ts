/**
 * A render cache across commits. The GitOps loop renders the repository at every new commit, and
 * most files have not changed since the last one: parsing and validating the same content again is
 * waste. Entries are keyed by the content (a hash of the file's path and bytes, or of a built object
 * with its positions), so a cache can be shared by any number of renders, of any commits, safely.
 *
 * Cached values are deep-frozen when stored: every caller sees the same object, and a rendering
 * step that tried to mutate one would throw instead of silently poisoning later renders. (Freezing
 * costs once per entry; copying on every use cost more — bench/README.md, render section.) The
 * kustomize build copies parsed documents before it transforms them, so it never needs to mutate
 * cached ones.
 */
import { createHash } from 'node:crypto';
import type { MeshObject, ValidationResult } from '../mesh/object.js';
import type { RepoFileSystem } from './types.js';

export interface RenderCacheOptions {
  /** Most entries kept (least recently used evicted first). Default 20,000. */
  maxEntries?: number;
}

export interface RenderCacheStats {
  /** Files actually parsed (cache misses), by every parser of the render. */
  parses: number;
  /** Parses answered from the cache. */
  parseHits: number;
  /** Objects actually validated (single-object checks; cross-object checks always run). */
  validations: number;
  validationHits: number;
  /** Kustomize builds (with their validation) actually run, and those reused because no input changed. */
  builds: number;
  buildHits: number;
  entries: number;
  evictions: number;
}

export const DEFAULT_MAX_ENTRIES = 20_000;
/** Variants of one traced build kept (e.g. the commit in force and a candidate rendered in turn). */
const MAX_VARIANTS = 4;

type TraceCall = 'readFile' | 'exists' | 'isDirectory' | 'listDir';
/** One file-system call and its answer: a content hash, a boolean, a listing, or an error message. */
type TraceStep = readonly [TraceCall, string, string];

interface TracedEntry<T> {
  trace: TraceStep[];
  value: T;
}

export class RenderCache {
  private readonly entries = new Map<string, unknown>();
  private readonly maxEntries: number;
  private readonly counters = { parses: 0, parseHits: 0, validations: 0, validationHits: 0, builds: 0, buildHits: 0, evictions: 0 };

  constructor(opts: RenderCacheOptions = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_MAX_ENTRIES);
  }

  get stats(): RenderCacheStats {
    return { ...this.counters, entries: this.entries.size };
  }

  clear(): void {
    this.entries.clear();
  }

  /**
   * The result of `parse` for this parser, file and content: computed once, then served deep-frozen.
   * A parse that throws is not cached (bad files are rare, and their errors must be reported each time).
   */
  parsed<T>(parser: string, file: string, text: string, parse: () => T): T {
    const key = `${parser}\0${digest(file, text)}`;
    const found = this.get(key);
    if (found !== undefined) {
      this.counters.parseHits++;
      return found as T;
    }
    this.counters.parses++;
    const value = deepFreeze(parse());
    this.set(key, value);
    return value;
  }

  /** The single-object validation of `obj` (content and positions), computed once per distinct object. */
  validated(obj: MeshObject, validate: (obj: MeshObject) => ValidationResult): ValidationResult {
    const key = `validate\0${digest(JSON.stringify(obj, exactNumbers), '')}`;
    const found = this.get(key);
    if (found !== undefined) {
      this.counters.validationHits++;
      return found as ValidationResult;
    }
    this.counters.validations++;
    const value = deepFreeze(validate(obj));
    this.set(key, value);
    return value;
  }

  /**
   * The result of `run` (a build that reads only through the file system it is given), reused while
   * every file-system answer it depended on is unchanged: each recorded call (read, exists, isDirectory,
   * listDir) is replayed against `fs` and its answer compared (file contents by hash). A few variants are
   * kept per scope, so renders of two commits in turn both hit. A run that throws is not cached.
   */
  async traced<T>(scope: string, fs: RepoFileSystem, run: (fs: RepoFileSystem) => Promise<T>): Promise<T> {
    const key = `traced\0${scope}`;
    const variants = (this.get(key) as Array<TracedEntry<T>> | undefined) ?? [];
    const digests = this.digestsFor(fs);
    for (const variant of variants) {
      if (await replays(variant.trace, fs, digests)) {
        this.counters.buildHits++;
        return variant.value;
      }
    }
    this.counters.builds++;
    const tracer = new TracingFileSystem(fs, digests);
    const value = deepFreeze(await run(tracer));
    this.set(key, [{ trace: tracer.trace, value }, ...variants].slice(0, MAX_VARIANTS));
    return value;
  }

  /** File digests per file-system object: one render reads (and hashes) each file once. */
  private readonly digests = new WeakMap<RepoFileSystem, Map<string, [string, string]>>();

  private digestsFor(fs: RepoFileSystem): Map<string, [string, string]> {
    let found = this.digests.get(fs);
    if (!found) this.digests.set(fs, (found = new Map()));
    return found;
  }

  private get(key: string): unknown {
    const value = this.entries.get(key);
    if (value !== undefined) {
      // least recently used first: a hit moves the entry to the end
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  private set(key: string, value: unknown): void {
    this.entries.set(key, value);
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
      this.counters.evictions++;
    }
  }
}

/** A cache to pass to `loadRepository(fs, { cache })` (and `buildKustomizationDetailed`) across renders. */
export function createRenderCache(opts?: RenderCacheOptions): RenderCache {
  return new RenderCache(opts);
}

/**
 * JSON.stringify writes NaN and ±Infinity as null and -0 as 0; a validation key must tell them apart.
 * They become strings behind a marker character, and strings that begin with the marker get it twice.
 */
function exactNumbers(_key: string, value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0) ? value : `\u0001${String(Object.is(value, -0) ? '-0' : value)}`;
  if (typeof value === 'string' && value.startsWith('\u0001')) return `\u0001${value}`;
  return value;
}

function digest(file: string, text: string): string {
  return createHash('sha256').update(file).update('\0').update(text).digest('base64');
}

/** Freezes a plain-data tree in place (objects and arrays) and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return value;
}

/** Answers a call as a comparable string (errors included: a build may depend on a refusal too). */
async function answer(fs: RepoFileSystem, call: TraceCall, path: string, digests: Map<string, [string, string]>): Promise<string> {
  try {
    switch (call) {
      case 'readFile':
        return `=${fileDigest(path, await fs.readFile(path), digests)}`;
      case 'exists':
        return `=${await fs.exists(path)}`;
      case 'isDirectory':
        return `=${await fs.isDirectory(path)}`;
      case 'listDir':
        return `=${JSON.stringify(await fs.listDir(path))}`;
    }
  } catch (err) {
    return `!${(err as Error).message}`;
  }
}

function fileDigest(path: string, text: string, digests: Map<string, [string, string]>): string {
  const known = digests.get(path);
  if (known && known[0] === text) return known[1];
  const value = digest(path, text);
  digests.set(path, [text, value]);
  return value;
}

async function replays(trace: readonly TraceStep[], fs: RepoFileSystem, digests: Map<string, [string, string]>): Promise<boolean> {
  for (const [call, path, expected] of trace) {
    if ((await answer(fs, call, path, digests)) !== expected) return false;
  }
  return true;
}

/** Passes every call through, recording it and its answer. */
class TracingFileSystem implements RepoFileSystem {
  readonly trace: TraceStep[] = [];

  constructor(
    private readonly inner: RepoFileSystem,
    private readonly digests: Map<string, [string, string]>,
  ) {}

  readFile(path: string): Promise<string> {
    return this.record('readFile', path, () => this.inner.readFile(path), (text) => `=${fileDigest(path, text, this.digests)}`);
  }

  exists(path: string): Promise<boolean> {
    return this.record('exists', path, () => this.inner.exists(path), (v) => `=${v}`);
  }

  isDirectory(path: string): Promise<boolean> {
    return this.record('isDirectory', path, () => this.inner.isDirectory(path), (v) => `=${v}`);
  }

  listDir(path: string): Promise<string[]> {
    return this.record('listDir', path, () => this.inner.listDir(path), (v) => `=${JSON.stringify(v)}`);
  }

  private async record<T>(call: TraceCall, path: string, run: () => Promise<T>, describe: (value: T) => string): Promise<T> {
    try {
      const value = await run();
      this.trace.push([call, path, describe(value)]);
      return value;
    } catch (err) {
      this.trace.push([call, path, `!${(err as Error).message}`]);
      throw err;
    }
  }
}
