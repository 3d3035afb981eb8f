import { createHash, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { AsnConvert, AsnSerializer, OctetString, type IAsnConvertible } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';

/**
 * X.509 v3 certificates built with PKI.js's ASN.1 schemas (@peculiar/asn1-x509) and signed by
 * node:crypto, for RSA and ECDSA (P-256/P-384) signing keys alike: the CA signs with whatever key
 * type its root has. Every key operation is node:crypto's (node-forge cannot read EC keys).
 */

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
} as const;

/** DER NULL: sha256WithRSAEncryption carries explicit NULL parameters (RFC 4055 §5). */
const NULL_PARAMETERS = new Uint8Array([0x05, 0x00]).buffer;

export const KEY_USAGE = KeyUsageFlags;

/**
 * A value turned into its asn1js tree once and placed as that tree wherever it goes (the library's
 * IAsnConvertible extension point). Encoding dominates issuance, and building the tree is half of
 * it: this spares rebuilding the TBSCertificate for the certificate after signing it, and what a CA
 * puts unchanged in every leaf (issuer name, signature algorithm, constant extensions). The result
 * only serialises: its fields cannot be read.
 */
class PreEncoded implements IAsnConvertible {
  constructor(private readonly asn: ReturnType<typeof AsnSerializer.toASN>) {}
  toASN(): ReturnType<typeof AsnSerializer.toASN> {
    return this.asn;
  }
  fromASN(): this {
    throw new Error('a pre-encoded value is write-only');
  }
  toSchema(): ReturnType<IAsnConvertible['toSchema']> {
    throw new Error('a pre-encoded value has no schema');
  }
}

/** `value` encoded now; typed as itself so it fits the schema classes' fields. */
export function preEncoded<T extends object>(value: T): T {
  return new PreEncoded(AsnSerializer.toASN(value)) as unknown as T;
}

export interface SignatureScheme {
  digest: 'sha256' | 'sha384';
  algorithm: AlgorithmIdentifier;
}

/** The signature algorithm a key signs with: sha256WithRSAEncryption, or ECDSA with the curve's hash. */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  if (key.asymmetricKeyType === 'rsa') {
    return { digest: 'sha256', algorithm: new AlgorithmIdentifier({ algorithm: OID.sha256WithRSA, parameters: NULL_PARAMETERS }) };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { digest: 'sha256', algorithm: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 }) };
    if (curve === 'secp384r1') return { digest: 'sha384', algorithm: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha384 }) };
    throw new Error(`EC curve ${curve ?? 'unknown'} is not supported (P-256 or P-384)`);
  }
  throw new Error(`key type ${key.asymmetricKeyType ?? 'unknown'} is not supported (RSA or EC)`);
}

const schemes = new WeakMap<KeyObject, SignatureScheme>();

/** signatureSchemeFor, remembered per key: node's asymmetricKeyDetails is not free. */
export function cachedSignatureScheme(key: KeyObject): SignatureScheme {
  let scheme = schemes.get(key);
  if (!scheme) {
    const { digest, algorithm } = signatureSchemeFor(key);
    scheme = { digest, algorithm: preEncoded(algorithm) };
    schemes.set(key, scheme);
  }
  return scheme;
}

/** node:crypto signs ECDSA as a DER `Ecdsa-Sig-Value` by default, which is what X.509 and PKCS#10 want. */
export function signDer(toBeSigned: Uint8Array, key: KeyObject, scheme: SignatureScheme): ArrayBuffer {
  return toArrayBuffer(cryptoSign(scheme.digest, toBeSigned, key));
}

export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function singleAttributeName(type: string, value: string): Name {
  const attribute = new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) });
  return new Name([new RelativeDistinguishedName([attribute])]);
}

export const emptyName = (): Name => new Name([]);

/** `O=<organization>`, as istiod names its self-signed root. */
export const organizationName = (organization: string): Name => singleAttributeName(OID.organization, organization);

/** `OU=<unit>` (one RDN): the cluster a workload certificate is bound to. */
export const organizationalUnitName = (unit: string): Name => singleAttributeName(OID.organizationalUnit, unit);

export interface SubjectAltNames {
  uris?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
}

function extension(extnID: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

export const extensions = {
  basicConstraints: (ca: boolean) => extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: ca })),
  keyUsage: (flags: number) => extension(id_ce_keyUsage, true, new KeyUsage(flags)),
  serverAndClientAuth: () => extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth, id_kp_clientAuth])),
  subjectKeyId: (keyId: Uint8Array) => extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId)),
  authorityKeyId: (keyId: Uint8Array) =>
    extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) })),
  /** Critical when the subject is empty (RFC 5280 §4.2.1.6), as Istio's workload certificates. */
  subjectAltName: (names: SubjectAltNames, critical: boolean) =>
    extension(
      id_ce_subjectAltName,
      critical,
      new SubjectAlternativeName([
        ...(names.uris ?? []).map((uri) => new GeneralName({ uniformResourceIdentifier: uri })),
        ...(names.dnsNames ?? []).map((dns) => new GeneralName({ dNSName: dns })),
        ...(names.ipAddresses ?? []).map((ip) => new GeneralName({ iPAddress: ip })),
      ]),
    ),
};

/** 128 random bits, positive and minimal in DER (top bit clear, first byte never zero). */
export function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes;
}

export interface CertificateTemplate {
  serial: Buffer;
  issuer: Name;
  subject: Name;
  notBefore: Date;
  notAfter: Date;
  /** The certified key. */
  spki: SubjectPublicKeyInfo;
  extensions: Extension[];
}

/** Builds and signs a certificate; returns its DER. */
export function buildCertificate(template: CertificateTemplate, signingKey: KeyObject): Buffer {
  const scheme = cachedSignatureScheme(signingKey);
  const tbsCertificate = preEncoded(
    new TBSCertificate({
      version: Version.v3,
      serialNumber: toArrayBuffer(template.serial),
      signature: scheme.algorithm,
      issuer: template.issuer,
      validity: new Validity({ notBefore: template.notBefore, notAfter: template.notAfter }),
      subject: template.subject,
      subjectPublicKeyInfo: template.spki,
      extensions: new Extensions(template.extensions),
    }),
  );
  const signatureValue = signDer(new Uint8Array(AsnConvert.serialize(tbsCertificate)), signingKey, scheme);
  return Buffer.from(AsnConvert.serialize(new Certificate({ tbsCertificate, signatureAlgorithm: scheme.algorithm, signatureValue })));
}

export function parseSpki(der: Uint8Array): SubjectPublicKeyInfo {
  return AsnConvert.parse(der, SubjectPublicKeyInfo);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bytes. */
export function keyIdOf(spki: SubjectPublicKeyInfo): Buffer {
  return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
}

export interface CertificateFields {
  /** The certificate's subject: the issuer of everything it signs. */
  subject: Name;
  spki: SubjectPublicKeyInfo;
  /** The subjectKeyIdentifier extension's key id, when present. */
  subjectKeyId?: Buffer;
}

/** Reads what an issuer needs from its own certificate: its subject (issuer of what it signs), key and key id. */
export function readCertificateFields(der: Uint8Array): CertificateFields {
  const certificate = AsnConvert.parse(der, Certificate);
  const tbs = certificate.tbsCertificate;
  // Leaves name their issuer with the re-encoded subject: it must be the very bytes of the
  // original, or verifiers that compare names byte for byte would not link the chain.
  const subjectDer = Buffer.from(AsnConvert.serialize(tbs.subject));
  if (!certificate.tbsCertificateRaw || !Buffer.from(certificate.tbsCertificateRaw).includes(subjectDer)) {
    throw new Error('the subject does not re-encode to its original bytes');
  }
  const keyIdExtension = tbs.extensions?.find((ext) => ext.extnID === id_ce_subjectKeyIdentifier);
  const subjectKeyId = keyIdExtension
    ? Buffer.from(AsnConvert.parse(keyIdExtension.extnValue.buffer, SubjectKeyIdentifier).buffer)
    : undefined;
  return { subject: tbs.subject, spki: tbs.subjectPublicKeyInfo, subjectKeyId };
}
