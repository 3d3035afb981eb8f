import { createHash, createPublicKey, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  DER_NULL,
  DER_TRUE,
  bitString,
  children,
  content,
  explicit,
  implicitPrimitive,
  namedBits,
  octetString,
  oid,
  raw,
  readTlv,
  sequence,
  set,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
  utf8String,
} from './der.js';

/**
 * X.509 v3 certificates and PKCS#10 requests built as DER and signed by node:crypto, for RSA and
 * ECDSA (P-256/P-384) signing keys alike: the CA signs with whatever key type its root has.
 */

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

interface SignatureScheme {
  digest: 'sha256' | 'sha384';
  algorithmId: Buffer;
}

/** The signature algorithm a key signs with: sha256WithRSAEncryption, or ECDSA with the curve's hash. */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  if (key.asymmetricKeyType === 'rsa') return { digest: 'sha256', algorithmId: sequence(oid(OID.sha256WithRSA), DER_NULL) };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { digest: 'sha256', algorithmId: sequence(oid(OID.ecdsaWithSha256)) };
    if (curve === 'secp384r1') return { digest: 'sha384', algorithmId: sequence(oid(OID.ecdsaWithSha384)) };
    throw new Error(`EC curve ${curve ?? 'unknown'} is not supported (P-256 or P-384)`);
  }
  throw new Error(`key type ${key.asymmetricKeyType ?? 'unknown'} is not supported (RSA or EC)`);
}

/** `SEQUENCE { toBeSigned, algorithm, BIT STRING signature }`: the envelope of certificates and CSRs alike. */
function signed(toBeSigned: Buffer, key: KeyObject, scheme: SignatureScheme = signatureSchemeFor(key)): Buffer {
  // node signs ECDSA as a DER `Ecdsa-Sig-Value` by default, which is what X.509 wants.
  const signature = cryptoSign(scheme.digest, toBeSigned, key);
  return sequence(toBeSigned, scheme.algorithmId, bitString(signature));
}

export const EMPTY_NAME = sequence();

/** `O=<organization>`, as istiod names its self-signed root. */
export function organizationName(organization: string): Buffer {
  return sequence(set(sequence(oid(OID.organization), utf8String(organization))));
}

export interface SubjectAltNames {
  uris?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split('.').map(Number));
  // IPv6: expand `::` and write eight 16-bit groups.
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group || '0', 16), i * 2));
  return out;
}

function generalNames(names: SubjectAltNames): Buffer {
  return sequence(
    ...(names.uris ?? []).map((uri) => implicitPrimitive(6, Buffer.from(uri, 'ascii'))),
    ...(names.dnsNames ?? []).map((dns) => implicitPrimitive(2, Buffer.from(dns, 'ascii'))),
    ...(names.ipAddresses ?? []).map((ip) => implicitPrimitive(7, ipBytes(ip))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), DER_TRUE, octetString(value)) : sequence(oid(id), octetString(value));
}

export const extensions = {
  basicConstraints: (ca: boolean) => extension(OID.basicConstraints, true, ca ? sequence(DER_TRUE) : sequence()),
  keyUsage: (bits: number[]) => extension(OID.keyUsage, true, namedBits(bits)),
  serverAndClientAuth: () => extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))),
  subjectKeyId: (keyId: Buffer) => extension(OID.subjectKeyId, false, octetString(keyId)),
  authorityKeyId: (keyId: Buffer) => extension(OID.authorityKeyId, false, sequence(implicitPrimitive(0, keyId))),
  /** Critical when the subject is empty (RFC 5280 §4.2.1.6), as Istio's workload certificates. */
  subjectAltName: (names: SubjectAltNames, critical: boolean) => extension(OID.subjectAltName, critical, generalNames(names)),
};

/** 128 random bits, positive and minimal in DER (top bit clear, first byte never zero). */
export function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes;
}

export interface CertificateTemplate {
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER of the certified key. */
  spki: Buffer;
  extensions: Buffer[];
}

const VERSION_3 = explicit(0, smallInteger(2));
const schemes = new WeakMap<KeyObject, SignatureScheme>();

/** Builds and signs a certificate; returns its DER. */
export function buildCertificate(template: CertificateTemplate, signingKey: KeyObject): Buffer {
  let scheme = schemes.get(signingKey);
  if (!scheme) {
    scheme = signatureSchemeFor(signingKey);
    schemes.set(signingKey, scheme);
  }
  const tbs = sequence(
    VERSION_3,
    unsignedInteger(template.serial),
    scheme.algorithmId,
    template.issuer,
    sequence(time(template.notBefore), time(template.notAfter)),
    template.subject,
    template.spki,
    explicit(3, sequence(...template.extensions)),
  );
  return signed(tbs, signingKey, scheme);
}

/** A PKCS#10 request with an empty subject and the SAN asked for (the CA decides the real names). */
export function buildCsr(key: KeyObject, names: SubjectAltNames): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const extensionRequest = sequence(oid(OID.extensionRequest), set(sequence(extensions.subjectAltName(names, false))));
  const info = sequence(smallInteger(0), EMPTY_NAME, spki, tlv(0xa0, extensionRequest));
  return signed(info, key);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
export function keyIdOf(spki: Buffer): Buffer {
  const outer = readTlv(spki, 0);
  const [, subjectPublicKey] = children(spki, outer);
  return createHash('sha1').update(content(spki, subjectPublicKey).subarray(1)).digest();
}

export interface CertificateFields {
  subject: Buffer;
  spki: Buffer;
  /** The subjectKeyIdentifier extension's key id, when present. */
  subjectKeyId?: Buffer;
}

/** Reads what an issuer needs from its own certificate: its subject (issuer of what it signs), key and key id. */
export function readCertificateFields(der: Buffer): CertificateFields {
  const cert = readTlv(der, 0);
  const tbs = children(der, readTlv(der, cert.contentStart));
  let i = tbs[0].tag === 0xa0 ? 1 : 0; // optional version
  i += 3; // serial, signature algorithm, issuer
  i += 1; // validity
  const subject = raw(der, tbs[i]);
  const spki = raw(der, tbs[i + 1]);
  let subjectKeyId: Buffer | undefined;
  const extensionsTlv = tbs.slice(i + 2).find((t) => t.tag === 0xa3);
  if (extensionsTlv) {
    const list = readTlv(der, extensionsTlv.contentStart);
    for (const ext of children(der, list)) {
      const parts = children(der, ext);
      if (raw(der, parts[0]).equals(oid(OID.subjectKeyId))) {
        const value = content(der, parts[parts.length - 1]); // OCTET STRING wrapping an OCTET STRING
        subjectKeyId = Buffer.from(content(value, readTlv(value, 0)));
      }
    }
  }
  return { subject: Buffer.from(subject), spki: Buffer.from(spki), subjectKeyId };
}
