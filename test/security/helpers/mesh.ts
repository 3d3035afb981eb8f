import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import { CertificateAuthority } from '../../../src/security/ca/certificate-authority.js';
import { generateKeyAndCsr } from '../../../src/security/ca/csr.js';
import { workloadCertificateFrom, type WorkloadCertificate } from '../../../src/security/tls/certificate-store.js';
import { connectionSecurityPolicy, peerSecurityOf } from '../../../src/security/tls/mesh-listener.js';

export async function issueWorkload(
  ca: CertificateAuthority,
  serviceAccount: string,
  ttlMs?: number,
  namespace = 'shop',
): Promise<WorkloadCertificate> {
  const identity = { trustDomain: ca.trustDomain, namespace, serviceAccount };
  const { privateKeyPem, csrPem } = await generateKeyAndCsr(identity);
  const issued = ca.issueWorkloadCertificate(csrPem, identity, ttlMs);
  return workloadCertificateFrom(privateKeyPem, issued.certChainPem, issued.rootCertPem);
}

/** Writes cert/key/root PEM files for the CLI clients. */
export function writeWorkloadFiles(dir: string, name: string, cert: WorkloadCertificate): { cert: string; key: string; root: string } {
  const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), root: join(dir, `${name}-root.pem`) };
  writeFileSync(files.cert, cert.certChainPem);
  writeFileSync(files.key, cert.privateKeyPem, { mode: 0o600 });
  writeFileSync(files.root, cert.rootCertPem);
  return files;
}

/** An http server that answers what the mesh listener told it about the connection. */
export function echoSecurityServer(): HttpServer {
  return createHttpServer((req, res) => {
    const security = peerSecurityOf(req.socket as Socket);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        mtls: security.mtls,
        principal: security.mtls ? security.principal : undefined,
        policy: connectionSecurityPolicy(security),
        path: req.url,
      }),
    );
  });
}

const openSockets = new WeakMap<NetServer, Set<Socket>>();

/** Listens on a free loopback port, tracking raw connections so closeServer can end them all. */
export async function listen(server: NetServer): Promise<number> {
  const sockets = new Set<Socket>();
  openSockets.set(server, sockets);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: NetServer | HttpServer): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of openSockets.get(server) ?? []) socket.destroy();
  await closed;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a real CLI client asynchronously (the servers live in this process). */
export function run(command: string, args: string[], input?: string, timeoutMs = 10_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
