import { readFile } from 'node:fs/promises';
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ApplyResult } from './server.js';

export interface ConfigWatcher {
  /** Reads the file now and applies it (also called on every change). */
  reload(): Promise<ApplyResult | undefined>;
  close(): void;
}

/**
 * `--config FILE`: applies the snapshot in FILE (JSON or YAML) and re-applies it when it changes.
 * fs.watch on the directory catches rename-based atomic writes; a stat poll is the fallback where
 * watch events are unreliable (network and container filesystems).
 */
export function watchConfigFile(
  file: string,
  apply: (value: unknown, source: string) => ApplyResult,
  opts: { logger?: Logger; pollMs?: number; onUnparsable?: (reason: string, source: string) => void } = {},
): ConfigWatcher {
  let lastText: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let running: Promise<ApplyResult | undefined> | undefined;

  const reload = async (): Promise<ApplyResult | undefined> => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      opts.logger?.warn({ file, err: (err as Error).message }, 'config file unreadable; keeping the current snapshot');
      return undefined;
    }
    if (text === lastText || closed) return undefined;
    lastText = text;
    let value: unknown;
    try {
      // yaml is loaded only for YAML files: it costs ~9 MB of RSS a JSON-fed proxy need not pay.
      value = file.endsWith('.json') ? JSON.parse(text) : (await import('yaml')).parse(text);
    } catch (err) {
      const result: ApplyResult = { ok: false, error: `${file}: ${(err as Error).message}` };
      opts.logger?.warn({ file, reason: result.error }, 'config file does not parse; keeping the current snapshot');
      opts.onUnparsable?.(result.error, `file:${file}`);
      return result;
    }
    return apply(value, `file:${file}`);
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      running = (running ?? Promise.resolve(undefined)).then(reload, reload);
    }, 30);
  };

  let watcher: FSWatcher | undefined;
  try {
    const name = basename(file);
    watcher = watch(dirname(file), (_event, changed) => {
      if (!changed || changed.toString() === name) schedule();
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  watchFile(file, { interval: opts.pollMs ?? 1000, persistent: false }, schedule);

  return {
    reload: () => (running = (running ?? Promise.resolve(undefined)).then(reload, reload)),
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher?.close();
      unwatchFile(file, schedule);
    },
  };
}
