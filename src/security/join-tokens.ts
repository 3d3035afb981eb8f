import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaError } from './errors.js';
import { readIfExists, writeSecretFile } from './state-files.js';

/** 32 random bytes, base64url: 256 bits of entropy. */
const TOKEN_BYTES = 32;
const CLUSTER_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const JOIN_TOKEN_DIR = 'join-tokens';

export interface JoinTokenStoreOptions {
  /** Tokens live in `<stateDir>/join-tokens/<cluster>.token` (0600), created on first use. */
  stateDir: string;
  /** Per-cluster override: read the token from this file instead (never written by Trellis). */
  tokenFiles?: Record<string, string>;
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

  /** The token for `cluster` (created and persisted on first call unless a token file is configured). */
  async tokenFor(cluster: string): Promise<string> {
    assertClusterName(cluster);
    const configured = this.options.tokenFiles?.[cluster];
    if (configured) {
      const token = (await readFile(configured, 'utf8')).trim();
      if (token.length < 16) throw new CaError('CA_LOAD', `${configured}: join token for cluster ${cluster} is shorter than 16 characters`);
      return token;
    }
    const path = join(this.options.stateDir, JOIN_TOKEN_DIR, `${cluster}.token`);
    const existing = (await readIfExists(path))?.trim();
    if (existing) return existing;
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    await writeSecretFile(path, `${token}\n`);
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
      expected = digest(await this.tokenFor(cluster));
      this.digests.set(cluster, expected);
    }
    return timingSafeEqual(expected, digest(presented));
  }

  /** Forget cached digests (after a token file was rotated on disk). */
  reload(): void {
    this.digests.clear();
  }
}

function assertClusterName(cluster: string): void {
  if (!CLUSTER_NAME_RE.test(cluster)) throw new CaError('IDENTITY', `cluster name ${JSON.stringify(cluster)} is not a DNS label`);
}
