import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** A child process of the demo whose JSON log lines are watched for a readiness message. */
export interface Child {
  name: string;
  proc: ChildProcess;
  /** Resolves with the first log line whose `msg` equals `message`. */
  waitFor(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  kill9(): Promise<void>;
}

/** Spawns `command args`, copying its output to `logFile` and parsing stdout as pino JSON lines. */
export function startChild(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Child {
  const proc = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  proc.stderr!.pipe(log, { end: false });
  const waiters: Array<{ message: string; resolve: (line: Record<string, unknown>) => void }> = [];
  const seen: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    log.write(`${text}\n`);
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    seen.push(line);
    if (seen.length > 200) seen.shift();
    for (const w of waiters.splice(0)) {
      if (line.msg === w.message) w.resolve(line);
      else waiters.push(w);
    }
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    name,
    proc,
    waitFor(message, timeoutMs = 60_000) {
      const already = seen.find((l) => l.msg === message);
      if (already) return Promise.resolve(already);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no "${message}" within ${timeoutMs} ms (see ${logFile})`)), timeoutMs);
        const onExit = (code: number | null) => reject(new Error(`${name} exited (${code}) before "${message}" (see ${logFile})`));
        proc.once('exit', onExit);
        waiters.push({
          message,
          resolve: (line) => {
            clearTimeout(timer);
            proc.off('exit', onExit);
            resolve(line);
          },
        });
      });
    },
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      log.end();
    },
    async kill9() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
