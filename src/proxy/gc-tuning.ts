import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags that keep a proxy's GC pauses on one thread. With parallel scavenging, each
 * young-generation GC hands work to helper threads and the main thread waits for them; on a host
 * whose cores are busy (a sidecar next to its app), those threads are not scheduled promptly and a
 * sub-millisecond scavenge becomes a pause of many milliseconds, straight into the latency tail. A
 * proxy's young generation is small (2 MB semi-spaces), so one thread scavenges it as fast.
 * Concurrent marking and sweeping stay: they run beside the main thread, not inside a pause
 * (`--no-parallel-marking` cannot change at run time: V8 aborts). bench/README.md has the figures.
 */
export const SINGLE_THREADED_GC_FLAGS = ['--no-parallel-scavenge', '--no-parallel-compaction', '--no-parallel-pointer-update'];

/**
 * Makes this process's GC pauses single-threaded (SINGLE_THREADED_GC_FLAGS), set at run time
 * because node refuses these flags in NODE_OPTIONS. Call it once, early, in a process that runs the
 * proxy (the `trellis proxy` command), not in a library or test process.
 */
export function useSingleThreadedGc(): void {
  for (const flag of SINGLE_THREADED_GC_FLAGS) setFlagsFromString(flag);
}
