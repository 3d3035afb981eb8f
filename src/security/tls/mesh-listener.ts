import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { PeerAuthMode } from '../../mesh/snapshot.js';
import { principalOf, spiffeIdFromSubjectAltName } from '../identity.js';
import type { CertificateStore, WorkloadCertificate } from './certificate-store.js';

/** TLS records start with content type 22 (handshake): a ClientHello's first byte is 0x16. */
const TLS_HANDSHAKE_BYTE = 0x16;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export type PeerSecurity =
  | {
      mtls: true;
      /** `spiffe://td/ns/x/sa/y`, when the client certificate carries one. */
      spiffeId?: string;
      /** Istio principal: the SPIFFE id without `spiffe://`. */
      principal?: string;
      /** Serial of the client certificate (upper-case hex). */
      peerSerial?: string;
    }
  | { mtls: false };

/** Istio's `connection_security_policy` label value on the destination side. */
export function connectionSecurityPolicy(security: PeerSecurity | undefined): 'mutual_tls' | 'none' {
  return security?.mtls ? 'mutual_tls' : 'none';
}

const peerSecurityBySocket = new WeakMap<Socket, PeerSecurity>();

/** Security facts of a connection handed out by a mesh listener (`req.socket` in an http handler). */
export function peerSecurityOf(socket: Socket): PeerSecurity {
  return peerSecurityBySocket.get(socket) ?? { mtls: false };
}

export type RejectReason = 'plaintext-refused' | 'tls-handshake-failed' | 'detection-timeout';

export interface MeshListenerOptions {
  /** Current workload key/cert and mesh root; rotation is picked up for new connections. */
  store: CertificateStore;
  /** Mode per local (destination) port: the resolved InboundPolicy.mtlsMode with portLevelMtls overrides. */
  modeFor: (port: number) => PeerAuthMode;
  /** Receives each accepted connection: a TLSSocket (mutual TLS, peer verified) or the plain socket. */
  onConnection: (socket: Socket, security: PeerSecurity) => void;
  /** ALPN offered on TLS (default http/1.1). */
  alpnProtocols?: string[];
  handshakeTimeoutMs?: number;
  /** Close a connection that sends nothing within this time (default: wait, as Istio's protocolDetectionTimeout 0s). */
  detectionTimeoutMs?: number;
  onRejected?: (reason: RejectReason, remoteAddress: string | undefined, port: number) => void;
  logger?: Logger;
}

export interface MeshListener {
  /** The listening server: call `listen()` on it (and `close()` via the method below). */
  server: NetServer;
  /** Open accepted connections (raw sockets, TLS or plain). */
  readonly connectionCount: number;
  /** Destroys every open connection (after the caller has drained what it wanted). */
  closeAllConnections(): void;
  /** Stops accepting, destroys remaining connections, stops following rotation. */
  close(): Promise<void>;
  /** Stops following certificate rotation only. */
  dispose(): void;
}

/** Resolves a port's mode from InboundPolicy-style fields (`portLevelMtls` keys are port strings). */
export function modeForPort(mtlsMode: PeerAuthMode, portLevelMtls: Record<string, PeerAuthMode> = {}): (port: number) => PeerAuthMode {
  return (port) => portLevelMtls[String(port)] ?? mtlsMode;
}

/**
 * Inbound listener with per-connection TLS detection. It peeks at the first byte: 0x16 means a TLS
 * ClientHello, terminated here with a client certificate required and verified against the mesh
 * root; anything else is plaintext. STRICT resets plaintext connections, PERMISSIVE accepts both,
 * DISABLE never offers TLS (bytes pass through untouched).
 */
export function createMeshListener(options: MeshListenerOptions): MeshListener {
  const tlsServer = new TlsServer({
    ...tlsOptionsFor(options.store.current),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: options.alpnProtocols ?? ['http/1.1'],
    handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  });
  const onRotated = (cert: WorkloadCertificate) => tlsServer.setSecureContext(tlsOptionsFor(cert));
  options.store.on('rotated', onRotated);

  const reject = (reason: RejectReason, socket: Socket, port: number) => {
    options.onRejected?.(reason, socket.remoteAddress, port);
    options.logger?.debug({ reason, remoteAddress: socket.remoteAddress, port }, 'inbound connection rejected');
    // Plaintext on STRICT: Istio's sidecar has no filter chain for it and resets; no HTTP answer either way.
    if (reason === 'plaintext-refused') socket.resetAndDestroy();
    else socket.destroy();
  };

  tlsServer.on('secureConnection', (tlsSocket: TLSSocket) => {
    const peer = tlsSocket.getPeerCertificate();
    const spiffeId = spiffeIdFromSubjectAltName(peer?.subjectaltname);
    const security: PeerSecurity = {
      mtls: true,
      spiffeId,
      principal: spiffeId ? principalOf(spiffeId) : undefined,
      peerSerial: peer?.serialNumber,
    };
    peerSecurityBySocket.set(tlsSocket, security);
    options.onConnection(tlsSocket, security);
  });
  tlsServer.on('tlsClientError', (_error: Error, tlsSocket: TLSSocket) => {
    reject('tls-handshake-failed', tlsSocket, tlsSocket.localPort ?? 0);
  });

  const open = new Set<Socket>();
  const server = createNetServer({ pauseOnConnect: false }, (socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    const port = socket.localPort ?? 0;
    const mode = options.modeFor(port);
    socket.on('error', () => socket.destroy());
    if (mode === 'DISABLE') {
      peerSecurityBySocket.set(socket, { mtls: false });
      options.onConnection(socket, { mtls: false });
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    if (options.detectionTimeoutMs) {
      timer = setTimeout(() => reject('detection-timeout', socket, port), options.detectionTimeoutMs);
      timer.unref();
    }
    socket.once('data', (chunk: Buffer) => {
      if (timer) clearTimeout(timer);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE_BYTE) {
        tlsServer.emit('connection', socket);
        return;
      }
      if (mode === 'STRICT') return reject('plaintext-refused', socket, port);
      peerSecurityBySocket.set(socket, { mtls: false });
      options.onConnection(socket, { mtls: false });
      socket.resume();
    });
    socket.once('close', () => timer && clearTimeout(timer));
  });

  const dispose = () => {
    options.store.off('rotated', onRotated);
  };
  const closeAllConnections = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    server,
    get connectionCount() {
      return open.size;
    },
    closeAllConnections,
    dispose,
    close: () =>
      new Promise<void>((resolve) => {
        dispose();
        if (!server.listening) return resolve();
        server.close(() => resolve());
        closeAllConnections();
      }),
  };
}

/** onConnection for an http.Server (or https-less http2 server): hands the socket over unchanged. */
export function handToServer(target: { emit(event: 'connection', socket: Socket): boolean }): (socket: Socket) => void {
  return (socket) => {
    target.emit('connection', socket);
  };
}

function tlsOptionsFor(cert: WorkloadCertificate): { key: string; cert: string; ca: string } {
  return { key: cert.privateKeyPem, cert: cert.certChainPem, ca: cert.rootCertPem };
}
