import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import forge from 'node-forge';

/**
 * Minimal CSR reader: walks the DER just far enough to verify the CSR's self-signature with
 * node:crypto (forge's JS verify costs ~1 ms per CSR) and returns its RSA public key for forge.
 */
interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[offset];
  let length = buf[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || contentStart + count > buf.length) throw new Error('bad DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[contentStart + i];
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end };
}

const DIGEST_BY_OID: Record<string, string> = {
  '2a864886f70d01010b': 'sha256',
  '2a864886f70d01010c': 'sha384',
  '2a864886f70d01010d': 'sha512',
};

export interface ParsedCsr {
  publicKey: forge.pki.rsa.PublicKey;
  signatureValid: boolean;
  keyType: string;
  keyBits: number;
}

/** Throws on malformed input; `signatureValid` false when the self-signature does not verify. */
export function parseCsrDer(der: Buffer): ParsedCsr {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30) throw new Error('CSR is not a SEQUENCE');
  const info = readTlv(der, outer.contentStart);
  const algorithm = readTlv(der, info.end);
  const signature = readTlv(der, algorithm.end);
  if (info.tag !== 0x30 || algorithm.tag !== 0x30 || signature.tag !== 0x03) throw new Error('CSR structure');
  const version = readTlv(der, info.contentStart);
  const subject = readTlv(der, version.end);
  const spki = readTlv(der, subject.end);
  const oid = readTlv(der, algorithm.contentStart);
  const digest = DIGEST_BY_OID[der.subarray(oid.contentStart, oid.end).toString('hex')];
  const spkiDer = der.subarray(spki.start, spki.end);
  const key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  const keyType = key.asymmetricKeyType ?? 'unknown';
  const keyBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (keyType !== 'rsa') {
    return { publicKey: undefined as never, signatureValid: false, keyType, keyBits };
  }
  const signatureBytes = der.subarray(signature.contentStart + 1, signature.end); // skip unused-bits byte
  const signatureValid =
    digest !== undefined && cryptoVerify(digest, der.subarray(info.start, info.end), key, signatureBytes);
  const publicKey = forge.pki.publicKeyFromAsn1(
    forge.asn1.fromDer(forge.util.createBuffer(spkiDer.toString('binary'))),
  ) as forge.pki.rsa.PublicKey;
  return { publicKey, signatureValid, keyType, keyBits };
}

export function pemToDer(pem: string, label: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(pem);
  if (!match) throw new Error(`no ${label} PEM block`);
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}
