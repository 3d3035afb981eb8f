import { createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import type { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';

/**
 * CSR reader: PKCS#10 decoded by @peculiar/asn1-csr, its self-signature verified by node:crypto,
 * and its SubjectPublicKeyInfo handed to the CA (which puts it in the certificate as it is).
 */

const DIGEST_BY_SIGNATURE_OID: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

const EC_PUBLIC_KEY_OID = '1.2.840.10045.2.1';
/** An EC SPKI's parameters are the curve's OBJECT IDENTIFIER: its DER (hex) → node's curve name. */
const CURVE_BY_PARAMETERS: Record<string, string> = { '06082a8648ce3d030107': 'prime256v1', '06052b81040022': 'secp384r1' };

export interface ParsedCsr {
  /** The requested key, as the CSR carries it. */
  spki: SubjectPublicKeyInfo;
  signatureValid: boolean;
  /** `rsa`, `ec`, … (node's asymmetricKeyType). */
  keyType: string;
  /** RSA modulus length; 0 for other key types. */
  keyBits: number;
  /** EC named curve (`prime256v1`, `secp384r1`, `unsupported`); undefined for other key types. */
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

/** Both imports check that an EC point lies on its curve. */
function publicKeyOf(spki: SubjectPublicKeyInfo, curve: string | undefined): KeyObject {
  const jwk = curve ? ecJwk(curve, Buffer.from(spki.subjectPublicKey)) : undefined;
  if (jwk) return createPublicKey({ key: jwk, format: 'jwk' });
  return createPublicKey({ key: Buffer.from(AsnConvert.serialize(spki)), format: 'der', type: 'spki' });
}

/** Throws on malformed input; `signatureValid` false when the self-signature does not verify. */
export function parseCsrDer(der: Buffer): ParsedCsr {
  const request = AsnConvert.parse(der, CertificationRequest);
  const info = request.certificationRequestInfoRaw;
  if (!info) throw new Error('CSR has no CertificationRequestInfo');
  const spki = request.certificationRequestInfo.subjectPKInfo;
  // The curve from the SPKI's own parameters: node's asymmetricKeyDetails costs as much as the signature check.
  const parameters = spki.algorithm.parameters;
  const curve =
    spki.algorithm.algorithm === EC_PUBLIC_KEY_OID
      ? (parameters && CURVE_BY_PARAMETERS[Buffer.from(parameters).toString('hex')]) || 'unsupported'
      : undefined;
  const key = publicKeyOf(spki, curve);
  const keyType = key.asymmetricKeyType ?? 'unknown';
  const keyBits = keyType === 'rsa' ? (key.asymmetricKeyDetails?.modulusLength ?? 0) : 0;
  const digest = DIGEST_BY_SIGNATURE_OID[request.signatureAlgorithm.algorithm];
  const signatureValid = digest !== undefined && cryptoVerify(digest, new Uint8Array(info), key, new Uint8Array(request.signature));
  return { spki, signatureValid, keyType, keyBits, curve };
}
