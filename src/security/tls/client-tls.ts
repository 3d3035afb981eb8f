import { readFileSync } from 'node:fs';
import type { PeerCertificate, ConnectionOptions } from 'node:tls';
import { checkServerIdentity as defaultCheckServerIdentity } from 'node:tls';
import type { UpstreamTls } from '../../mesh/snapshot.js';
import { toSpiffeUri, uriSansOf } from '../identity.js';
import type { CertificateStore } from './certificate-store.js';

/** `AUTO` = auto mTLS toward an endpoint whose tlsMode is `istio`: ISTIO_MUTUAL with the endpoint's accounts. */
export type UpstreamTlsSetting = UpstreamTls | 'AUTO';

export interface ClientTlsExtras {
  /** Secure naming for AUTO (or ISTIO_MUTUAL without subjectAltNames): SPIFFE ids / principals of the service's accounts. */
  subjectAltNames?: string[];
  /** SNI when the setting has none. */
  servername?: string;
  alpnProtocols?: string[];
}

/** Error with a stable code so the proxy can map it to a response flag (UF / upstream TLS failure). */
export class SecureNamingError extends Error {
  readonly code = 'ERR_TRELLIS_SECURE_NAMING';
  constructor(message: string) {
    super(message);
    this.name = 'SecureNamingError';
  }
}

/**
 * checkServerIdentity for ISTIO_MUTUAL: the server's certificate must carry one of the expected
 * SPIFFE URI SANs (Istio's secure naming). An empty list accepts any identity the mesh root signed.
 */
export function spiffeIdentityCheck(expected: string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const wanted = new Set(expected.map(toSpiffeUri));
  return (_host, cert) => {
    if (wanted.size === 0) return undefined;
    const presented = uriSansOf(cert.subjectaltname);
    if (presented.some((uri) => wanted.has(uri))) return undefined;
    return new SecureNamingError(
      `server identity ${presented.join(',') || '(none)'} is not one of the expected ${[...wanted].join(',')}`,
    );
  };
}

/** checkServerIdentity for SIMPLE/MUTUAL with subjectAltNames: exact match on any DNS, URI or IP SAN. */
function sanListCheck(expected: string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const wanted = new Set(expected);
  return (_host, cert) => {
    const presented = (cert.subjectaltname ?? '').split(/,\s*/).map((entry) => entry.replace(/^(DNS|URI|IP Address):/, ''));
    if (presented.some((name) => wanted.has(name))) return undefined;
    return new Error(`server certificate SANs ${presented.join(',')} match none of ${expected.join(',')}`);
  };
}

/**
 * Compiles an upstream TLS setting once (reads SIMPLE/MUTUAL files now) and returns a factory to call
 * per NEW connection: ISTIO_MUTUAL picks up the store's current certificate each time, so rotation
 * reaches new connections. Returns undefined for DISABLE (plaintext).
 */
export function compileClientTls(
  setting: UpstreamTlsSetting,
  store: CertificateStore | undefined,
  extras: ClientTlsExtras = {},
): (() => ConnectionOptions) | undefined {
  const alpn = extras.alpnProtocols;
  if (setting === 'AUTO' || setting.mode === 'ISTIO_MUTUAL') {
    if (!store) throw new Error('ISTIO_MUTUAL needs the workload certificate store');
    const fromSetting = setting === 'AUTO' ? [] : setting.subjectAltNames;
    const expected = fromSetting.length > 0 ? fromSetting : (extras.subjectAltNames ?? []);
    const checkServerIdentity = spiffeIdentityCheck(expected);
    const servername = (setting !== 'AUTO' ? setting.sni : undefined) ?? extras.servername;
    return () => ({
      secureContext: store.secureContext,
      rejectUnauthorized: true,
      checkServerIdentity,
      ...(servername ? { servername } : {}),
      ...(alpn ? { ALPNProtocols: alpn } : {}),
    });
  }
  if (setting.mode === 'DISABLE') return undefined;

  const read = (path: string | undefined, field: string): string | undefined => {
    if (!path) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`DestinationRule tls.${field}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
    }
  };
  const ca = read(setting.caCertificates, 'caCertificates');
  const cert = setting.mode === 'MUTUAL' ? read(setting.clientCertificate, 'clientCertificate') : undefined;
  const key = setting.mode === 'MUTUAL' ? read(setting.privateKey, 'privateKey') : undefined;
  if (setting.mode === 'MUTUAL' && (!cert || !key)) {
    throw new Error('DestinationRule tls.mode MUTUAL requires clientCertificate and privateKey');
  }
  const servername = setting.sni ?? extras.servername;
  const checkServerIdentity =
    setting.subjectAltNames.length > 0 ? sanListCheck(setting.subjectAltNames) : defaultCheckServerIdentity;
  const options: ConnectionOptions = {
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    rejectUnauthorized: !setting.insecureSkipVerify,
    checkServerIdentity,
    ...(servername ? { servername } : {}),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  };
  return () => ({ ...options });
}

/** One-shot form of compileClientTls: options for one new connection, or undefined (DISABLE). */
export function createClientTlsOptions(
  setting: UpstreamTlsSetting,
  store: CertificateStore | undefined,
  extras?: ClientTlsExtras,
): ConnectionOptions | undefined {
  return compileClientTls(setting, store, extras)?.();
}
