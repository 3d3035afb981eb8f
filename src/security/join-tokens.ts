import { X509Certificate, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaError } from './errors.js';
import { readIfExists, writeSecretFile } from './state-files.js';
import { CLUSTER_NAME_RE } from './identity.js';

/** 32 random bytes, base64url: 256 bits of entropy. */
const TOKEN_BYTES = 32;
export const JOIN_TOKEN_DIR = 'join-tokens';

export interface JoinTokenStoreOptions {
  /** Tokens live in `<stateDir>/join-tokens/<cluster>.token` (0600), created on first use. */
  stateDir: string;
  /** Per-cluster override: read the token from this file instead (never written by Trellis). */
  tokenFiles?: Record<string, string>;
  /**
   * The mesh root's `sha256:<hex>` (caCertHashOf): appended to the tokens this store hands out
   * (`<secret>.sha256:<hex>`), so a proxy holding a token can verify the operator's TLS endpoint
   * without a root file, as kubeadm's --discovery-token-ca-cert-hash. Not a secret.
   */
  caCertHash?: string;
}

const CA_HASH_SUFFIX_RE = /^(.+)\.(sha256:[0-9a-f]{64})$/;

/** A join token as handed out: the secret, and the pin of the root that serves bootstrap, when present. */
export function parseJoinToken(value: string): { secret: string; caCertHash?: string } {
  const match = CA_HASH_SUFFIX_RE.exec(value.trim());
  return match ? { secret: match[1], caCertHash: match[2] } : { secret: value.trim() };
}

/** kubeadm's CA pin: `sha256:` + hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER). */
export function caCertHashOf(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Per-cluster join tokens. A proxy presents its cluster's token once, with a CSR, to get its first
 * certificate (see bootstrapExchange); afterwards it authenticates with that certificate.
 */
export class JoinTokenStore {
  private readonly digests = new Map<string, Buffer>();

  constructor(private readonly options: JoinTokenStoreOptions) {}

  /**
   * The token for `cluster` as proxies get it: `<secret>.sha256:<root hash>` when the store knows
   * the root (created and persisted on first call unless a token file is configured; a state-dir
   * token written before the pin existed, or for another root, is rewritten with the same secret).
   */
  async tokenFor(cluster: string): Promise<string> {
    assertClusterName(cluster);
    const configured = this.options.tokenFiles?.[cluster];
    if (configured) {
      const token = (await readFile(configured, 'utf8')).trim();
      if (parseJoinToken(token).secret.length < 16) throw new CaError('CA_LOAD', `${configured}: join token for cluster ${cluster} is shorter than 16 characters`);
      return token;
    }
    const path = join(this.options.stateDir, JOIN_TOKEN_DIR, `${cluster}.token`);
    const existing = (await readIfExists(path))?.trim();
    const secret = existing ? parseJoinToken(existing).secret : randomBytes(TOKEN_BYTES).toString('base64url');
    const token = this.options.caCertHash ? `${secret}.${this.options.caCertHash}` : secret;
    if (token !== existing) await writeSecretFile(path, `${token}\n`);
    return token;
  }

  /** Path of the token file for `cluster` (to hand to an installer), creating the token if needed. */
  async tokenPath(cluster: string): Promise<string> {
    await this.tokenFor(cluster);
    return this.options.tokenFiles?.[cluster] ?? join(this.options.stateDir, JOIN_TOKEN_DIR, `${cluster}.token`);
  }

  /** Constant-time check (compares sha256 digests, so the length does not leak either). */
  async verify(cluster: string, presented: string): Promise<boolean> {
    if (!CLUSTER_NAME_RE.test(cluster) || typeof presented !== 'string') return false;
    let expected = this.digests.get(cluster);
    if (!expected) {
      expected = digest(parseJoinToken(await this.tokenFor(cluster)).secret);
      this.digests.set(cluster, expected);
    }
    // Only the secret authenticates; the pin is public and may or may not be sent along.
    return timingSafeEqual(expected, digest(parseJoinToken(presented).secret));
  }

  /** Forget cached digests (after a token file was rotated on disk). */
  reload(): void {
    this.digests.clear();
  }
}

function assertClusterName(cluster: string): void {
  if (!CLUSTER_NAME_RE.test(cluster)) throw new CaError('IDENTITY', `cluster name ${JSON.stringify(cluster)} is not a DNS label`);
}
