import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { HeaderMap } from './hop-by-hop.js';

export interface UpgradeTarget {
  address: string;
  port: number;
  tls?: Record<string, unknown>;
}

/**
 * WebSocket / Upgrade pass-through: writes the request head to the chosen upstream and splices the
 * two sockets; the upstream's 101 (or refusal) reaches the client byte for byte.
 */
export function tunnelUpgrade(
  client: Duplex,
  head: Buffer,
  method: string,
  path: string,
  headers: HeaderMap,
  upgrade: string,
  target: UpgradeTarget,
  connectTimeoutMs: number,
  onDone: (ok: boolean) => void,
): void {
  let lines = `${method} ${path} HTTP/1.1\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) lines += `${name}: ${one}\r\n`;
    else lines += `${name}: ${v}\r\n`;
  }
  lines += `connection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
  const upstream: Socket = target.tls
    ? tlsConnect({ host: target.address, port: target.port, ...(target.tls as object) })
    : connect({ host: target.address, port: target.port });
  let connected = false;
  const timer = setTimeout(() => upstream.destroy(new Error('connect timeout')), connectTimeoutMs);
  let finished = false;
  const done = (ok: boolean): void => {
    if (finished) return;
    finished = true;
    onDone(ok);
  };
  upstream.once(target.tls ? 'secureConnect' : 'connect', () => {
    connected = true;
    clearTimeout(timer);
    upstream.setNoDelay(true);
    upstream.write(lines);
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on('error', () => {
    clearTimeout(timer);
    if (!connected && client.writable) {
      client.end('HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nx-trellis-response-flags: UF\r\ncontent-length: 19\r\nconnection: close\r\n\r\nno healthy upstream');
      done(false);
    } else client.destroy();
  });
  client.on('error', () => upstream.destroy());
  upstream.on('close', () => { client.destroy(); done(connected); });
  client.on('close', () => upstream.destroy());
}
