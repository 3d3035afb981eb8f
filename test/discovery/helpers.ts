import { startDiscoveryClient } from '../../src/discovery/client.js';
import type { DiscoveryClient, DiscoveryClientOptions } from '../../src/discovery/client.js';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';

/** Polls a condition until it holds; fails with the message (and the last value) after timeoutMs. */
export async function waitFor<T>(condition: () => T | Promise<T>, message: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await condition();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Tracks every client a test starts so afterEach can stop them all. */
export class ClientPool {
  readonly clients: DiscoveryClient[] = [];

  start(url: string, identity: ProxyIdentity, extra: Partial<DiscoveryClientOptions> = {}): DiscoveryClient {
    const client = startDiscoveryClient({
      url,
      identity,
      apply: () => ({ ok: true }),
      heartbeatMs: 60_000,
      backoff: { initialMs: 20, maxMs: 200 },
      ...extra,
    });
    this.clients.push(client);
    return client;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.stop()));
  }
}
