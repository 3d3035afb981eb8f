import { TLSSocket, type PeerCertificate } from 'node:tls';

interface Principals {
  peer: string | undefined;
  local: string | undefined;
}

const principalsBySocket = new WeakMap<TLSSocket, Principals>();

function spiffeUri(cert: PeerCertificate | object | null | undefined): string | undefined {
  const san = (cert as PeerCertificate | undefined)?.subjectaltname ?? '';
  return /(?:^|,\s*)URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1];
}

/**
 * The SPIFFE IDs of a mutual-TLS connection (Istio's source_principal and, at the destination
 * reporter, destination_principal), read once per connection: certificates do not change while
 * a connection lives.
 */
export function connectionPrincipals(socket: unknown): Principals | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  let principals = principalsBySocket.get(socket);
  if (!principals) {
    principals = { peer: spiffeUri(socket.getPeerCertificate()), local: spiffeUri(socket.getCertificate()) };
    principalsBySocket.set(socket, principals);
  }
  return principals;
}
