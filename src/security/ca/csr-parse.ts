import { createPublicKey, verify as cryptoVerify, type JsonWebKey } from 'node:crypto';
import { children, content, raw, readTlv } from './der.js';

/**
 * Minimal CSR reader: walks the DER just far enough to verify the CSR's self-signature with
 * node:crypto and hand the SubjectPublicKeyInfo to the CA (which copies it into the certificate).
 */

const DIGEST_BY_SIGNATURE_OID: Record<string, string> = {
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384',
  '2a864886f70d01010d': 'sha512',
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384',
  '2a8648ce3d040304': 'sha512',
};

/** SPKI algorithm OIDs (hex of the content) and the EC curves the mesh accepts. */
const EC_PUBLIC_KEY_OID = '2a8648ce3d0201';
const CURVE_BY_OID: Record<string, string> = { '2a8648ce3d030107': 'prime256v1', '2b81040022': 'secp384r1' };

export interface ParsedCsr {
  /** SubjectPublicKeyInfo DER of the requested key. */
  spki: Buffer;
  signatureValid: boolean;
  /** `rsa`, `ec`, … (node's asymmetricKeyType). */
  keyType: string;
  /** RSA modulus length; 0 for other key types. */
  keyBits: number;
  /** EC named curve (`prime256v1`, `secp384r1`); undefined for other key types. */
  curve?: string;
}

const JWK_CURVES: Record<string, { crv: string; size: number }> = { prime256v1: { crv: 'P-256', size: 32 }, secp384r1: { crv: 'P-384', size: 48 } };

/**
 * An uncompressed EC point as a JWK: OpenSSL 3 decodes a DER SubjectPublicKeyInfo through its
 * generic decoder, which costs more than the CSR's signature check; the JWK path does not.
 */
function ecJwk(curve: string, point: Buffer): JsonWebKey | undefined {
  const shape = JWK_CURVES[curve];
  if (!shape || point.length !== 1 + 2 * shape.size || point[0] !== 0x04) return undefined;
  return {
    kty: 'EC',
    crv: shape.crv,
    x: point.subarray(1, 1 + shape.size).toString('base64url'),
    y: point.subarray(1 + shape.size).toString('base64url'),
  };
}

/** Throws on malformed input; `signatureValid` false when the self-signature does not verify. */
export function parseCsrDer(der: Buffer): ParsedCsr {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('CSR is not a single SEQUENCE');
  const [info, algorithm, signature] = children(der, outer);
  if (info?.tag !== 0x30 || algorithm?.tag !== 0x30 || signature?.tag !== 0x03) throw new Error('CSR structure');
  const [, , spkiTlv] = children(der, info);
  if (spkiTlv?.tag !== 0x30) throw new Error('CSR has no SubjectPublicKeyInfo');
  const algorithmOid = readTlv(der, algorithm.contentStart);
  const digest = DIGEST_BY_SIGNATURE_OID[content(der, algorithmOid).toString('hex')];
  const spki = Buffer.from(raw(der, spkiTlv));
  // The curve from the SPKI's own OIDs: node's asymmetricKeyDetails costs as much as the signature check.
  const spkiParts = children(spki, readTlv(spki, 0));
  const [keyAlgorithmOid, parameters] = children(spki, spkiParts[0]);
  const isEc = content(spki, keyAlgorithmOid).toString('hex') === EC_PUBLIC_KEY_OID;
  const curve = isEc && parameters?.tag === 0x06 ? (CURVE_BY_OID[content(spki, parameters).toString('hex')] ?? 'unsupported') : undefined;
  const point = spkiParts[1] ? content(spki, spkiParts[1]).subarray(1) : Buffer.alloc(0);
  // Both imports check that an EC point lies on its curve.
  const jwk = curve ? ecJwk(curve, point) : undefined;
  const key = jwk ? createPublicKey({ key: jwk, format: 'jwk' }) : createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const keyType = key.asymmetricKeyType ?? 'unknown';
  const keyBits = keyType === 'rsa' ? (key.asymmetricKeyDetails?.modulusLength ?? 0) : 0;
  const signatureBytes = content(der, signature).subarray(1); // skip the unused-bits byte
  const signatureValid = digest !== undefined && cryptoVerify(digest, raw(der, info), key, signatureBytes);
  return { spki, signatureValid, keyType, keyBits, curve };
}

export function pemToDer(pem: string, label: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(pem);
  if (!match) throw new Error(`no ${label} PEM block`);
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}
