import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CertificateAuthority, type IssuedKeyPair, type PluginCaFiles } from './ca/certificate-authority.js';
import { startBootstrapServer, BOOTSTRAP_PATH, type BootstrapServer } from './bootstrap-server.js';
import { CaError } from './errors.js';
import { JoinTokenStore, caCertHashOf } from './join-tokens.js';
import { OPERATOR_DNS_NAME, operatorIdentity } from './operator-identity.js';

/** The operator renews its serving certificate by restarting; a year, or the root's end if sooner. */
const SERVER_CERT_TTL_MS = 365 * 24 * 60 * 60 * 1000;

export interface MeshCaServiceOptions {
  trustDomain: string;
  /** Self-signed root in `<caDir>/ca/` (created on first start, 0600). */
  caDir: string;
  /** Plug-in CA files (win over caDir). */
  plugin?: PluginCaFiles;
  /** JoinTokenStore state dir: tokens in `<tokenDir>/join-tokens/<cluster>.token`. */
  tokenDir: string;
  /** Where the TLS bootstrap endpoint listens (default 127.0.0.1, any free port). */
  host?: string;
  bootstrapPort?: number;
  /** Extra DNS names / IP addresses proxies reach the operator by (its serving certificate carries them). */
  serverNames?: string[];
  logger?: Logger;
}

/** Server TLS material for the discovery server in mTLS mode (shape of src/discovery's ServerTlsOptions). */
export interface MeshServerTls {
  key: string;
  cert: string;
  /** The mesh root: client certificates must chain to it. */
  ca: string;
}

/**
 * The operator's side of mesh identity: the CA, the per-cluster join tokens (each carrying the
 * root's pin), the operator's own serving certificate, and the TLS bootstrap endpoint.
 */
export class MeshCaService {
  private constructor(
    readonly ca: CertificateAuthority,
    readonly tokens: JoinTokenStore,
    readonly serverCertificate: IssuedKeyPair,
    private readonly bootstrap: BootstrapServer,
  ) {}

  static async start(options: MeshCaServiceOptions): Promise<MeshCaService> {
    const ca = await CertificateAuthority.open({ trustDomain: options.trustDomain, stateDir: options.caDir, plugin: options.plugin });
    const tokens = new JoinTokenStore({ stateDir: options.tokenDir, caCertHash: caCertHashOf(ca.rootCertPem) });
    const host = options.host ?? '127.0.0.1';
    const serverCertificate = await ca.issueServerCertificate({ identity: operatorIdentity(ca.trustDomain), ...serverNamesFor(host, options.serverNames ?? []), ttlMs: SERVER_CERT_TTL_MS });
    const bootstrap = await startBootstrapServer({ ca, tokens, serverCertificate, host, port: options.bootstrapPort, logger: options.logger });
    options.logger?.info({ trustDomain: ca.trustDomain, mode: ca.mode, keyType: ca.signingKeyType, caCertHash: caCertHashOf(ca.rootCertPem), caDir: join(options.caDir, 'ca'), bootstrap: bootstrap.url }, 'mesh CA ready');
    return new MeshCaService(ca, tokens, serverCertificate, bootstrap);
  }

  /** `https://host:port/v1/bootstrap`. */
  get bootstrapUrl(): string {
    return this.bootstrap.url;
  }

  get bootstrapPort(): number {
    return this.bootstrap.port;
  }

  /** Discovery over mTLS: the operator's certificate (with the root, for pinning clients) and the root as client CA. */
  discoveryServerTls(): MeshServerTls {
    const cert = this.serverCertificate;
    return { key: cert.privateKeyPem, cert: cert.certChainPem + cert.rootCertPem, ca: this.ca.rootCertPem };
  }

  /**
   * `/v1/bootstrap` on the operator's plain HTTP API: a GET says where the TLS endpoint is (no
   * secret involved: clients trust it through their token's pin); anything else is refused, so a
   * token is never accepted in plaintext.
   */
  handlePlainHttp(req: IncomingMessage, res: ServerResponse): void {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method === 'GET') {
      // Proxies reached the API by this host name; the TLS endpoint listens beside it.
      const requested = hostOf(req.headers.host);
      const listening = new URL(this.bootstrap.url).hostname;
      const host = requested && isUnspecified(listening) ? requested : listening;
      return reply(200, { tlsUrl: `https://${host}:${this.bootstrap.port}${BOOTSTRAP_PATH}` });
    }
    const refused = new CaError('TLS_REQUIRED', 'plaintext bootstrap request refused');
    reply(refused.status, { ...refused.toWire(), tlsUrl: this.bootstrap.url });
  }

  close(): Promise<void> {
    return this.bootstrap.close();
  }
}

function isUnspecified(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === '0.0.0.0' || bare === '::';
}

function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+)/.exec(header);
  return match?.[1];
}

function serverNamesFor(host: string, extra: string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const names = new Set(['localhost', OPERATOR_DNS_NAME, '127.0.0.1', '::1', ...extra]);
  if (!isUnspecified(host)) names.add(host);
  const all = [...names];
  return { dnsNames: all.filter((n) => isIP(n) === 0), ipAddresses: all.filter((n) => isIP(n) !== 0) };
}
