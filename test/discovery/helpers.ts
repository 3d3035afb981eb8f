import { startDiscoveryClient } from '../../src/discovery/client.js';
import type { DiscoveryClient, DiscoveryClientOptions } from '../../src/discovery/client.js';
import type { ProxyIdentity } from '../../src/mesh/snapshot.js';
import { connect as http2connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { CONTENT_TYPE, LineDecoder, STREAM_PATH, decodeOperatorMessage, encodeMessage } from '../../src/discovery/protocol.js';
import type { OperatorMessage } from '../../src/discovery/protocol.js';

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

/** A discovery stream spoken by hand over HTTP/2: every operator message is decoded into `received`. */
export interface RawDiscoveryStream {
  session: ClientHttp2Session;
  stream: ClientHttp2Stream;
  received: OperatorMessage[];
  send(message: Parameters<typeof encodeMessage>[0]): boolean;
}

export function openRawDiscoveryStream(url: string): RawDiscoveryStream {
  const session = http2connect(url);
  const stream = session.request({ ':method': 'POST', ':path': STREAM_PATH, 'content-type': CONTENT_TYPE }, { endStream: false });
  const received: OperatorMessage[] = [];
  const decoder = new LineDecoder();
  stream.on('data', (chunk: Buffer) => {
    for (const line of decoder.push(chunk)) received.push(decodeOperatorMessage(line));
  });
  return { session, stream, received, send: (message) => stream.write(encodeMessage(message)) };
}
