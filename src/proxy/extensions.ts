import type { IncomingMessage } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import type { ProxySnapshot, UpstreamCluster } from '../mesh/snapshot.js';

/**
 * mTLS hooks implemented by src/security. Defaults: no TLS on the inbound listener, and upstream TLS
 * only from DestinationRule certificate files (SIMPLE / MUTUAL).
 */
export interface ProxyTlsProvider {
  /** Server credentials for the sidecar inbound listener (mTLS); undefined = plaintext only. */
  serverContext(): (SecureContextOptions & { requestCert?: boolean; rejectUnauthorized?: boolean }) | undefined;
  /** Client TLS options (undici `connect` / tls.connect options) toward a cluster; undefined = the default. */
  clientContext(cluster: UpstreamCluster): (Record<string, unknown> & { servername?: string }) | undefined;
}

/** What the inbound filter knows about a request besides the request itself. */
export interface InboundContext {
  snapshot: ProxySnapshot;
  /** Listener port the request arrived on. */
  port: number;
  remoteAddress: string | undefined;
  /** True when the connection is TLS. */
  tls: boolean;
  /** DER of the peer certificate when the client presented one (mTLS). */
  peerCertificate?: { raw: Buffer; subjectaltname?: string } | undefined;
}

export interface InboundDenial {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

/** Runs before an inbound request is forwarded to the app (authorization, JWT); null = allow. */
export type InboundFilter = (req: IncomingMessage, ctx: InboundContext) => Promise<InboundDenial | null>;
