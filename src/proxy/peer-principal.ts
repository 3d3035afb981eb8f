import { TLSSocket } from 'node:tls';

const principalBySocket = new WeakMap<TLSSocket, string | null>();

/**
 * The SPIFFE ID the peer of a mutual-TLS connection presented (Istio's source_principal), read
 * once per connection: the certificate does not change while the connection lives.
 */
export function peerPrincipalOf(socket: unknown): string | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  let principal = principalBySocket.get(socket);
  if (principal === undefined) {
    const san = socket.getPeerCertificate()?.subjectaltname ?? '';
    principal = /(?:^|,\s*)URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1] ?? null;
    principalBySocket.set(socket, principal);
  }
  return principal ?? undefined;
}
