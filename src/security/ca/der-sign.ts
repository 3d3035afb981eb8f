import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

/**
 * Signs a forge-built certificate with node:crypto instead of forge's pure-JS RSA (~50 ms → ~1 ms
 * per RSA-2048 signature; see ../shared/TOOLCHAIN.md "Certificates"). forge still lays out the
 * TBSCertificate; we sign its DER and assemble `Certificate ::= SEQUENCE { tbs, algId, BIT STRING }`.
 */

/** Present in node-forge's x509.js but missing from @types/node-forge. */
interface ForgeTbs {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
}

/** AlgorithmIdentifier { sha256WithRSAEncryption (1.2.840.113549.1.1.11), NULL }. */
const SHA256_WITH_RSA_ALG_ID = Buffer.from('300d06092a864886f70d01010b0500', 'hex');

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derTlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

/** DER of the TBSCertificate, with the signature algorithm fixed to sha256WithRSAEncryption. */
export function tbsCertificateDer(cert: forge.pki.Certificate): Buffer {
  const oid = forge.pki.oids.sha256WithRSAEncryption;
  cert.signatureOid = oid;
  (cert as unknown as { siginfo: { algorithmOid: string } }).siginfo.algorithmOid = oid;
  const tbs = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert);
  return Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
}

/** `SEQUENCE { toBeSigned, sha256WithRSAEncryption, BIT STRING signature }`: the shape of both certificates and CSRs. */
function signedEnvelope(toBeSigned: Buffer, signingKey: KeyObject): Buffer {
  if (signingKey.asymmetricKeyType !== 'rsa') {
    throw new Error(`signing key type ${signingKey.asymmetricKeyType ?? 'unknown'} is not supported (RSA only)`);
  }
  const signature = cryptoSign('sha256', toBeSigned, signingKey);
  const bitString = derTlv(0x03, Buffer.concat([Buffer.from([0x00]), signature]));
  return derTlv(0x30, Buffer.concat([toBeSigned, SHA256_WITH_RSA_ALG_ID, bitString]));
}

/** Signs `cert` with an RSA `signingKey`; returns the certificate DER. */
export function signCertificateDer(cert: forge.pki.Certificate, signingKey: KeyObject): Buffer {
  return signedEnvelope(tbsCertificateDer(cert), signingKey);
}

/** Signs a forge-built CSR with node:crypto; returns the CertificationRequest DER. */
export function signCsrDer(csr: forge.pki.CertificateSigningRequest, signingKey: KeyObject): Buffer {
  const oid = forge.pki.oids.sha256WithRSAEncryption;
  const mutable = csr as unknown as { signatureOid: string; siginfo: { algorithmOid: string } };
  mutable.signatureOid = oid;
  mutable.siginfo.algorithmOid = oid;
  const info = (forge.pki as unknown as ForgeTbs).getCertificationRequestInfo(csr);
  return signedEnvelope(Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary'), signingKey);
}

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const base64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

/** Splits a PEM bundle into its certificate blocks (each ending with a newline). */
export function splitPemCertificates(bundle: string): string[] {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => `${block}\n`);
}
