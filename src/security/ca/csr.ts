import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attribute, Extensions } from '@peculiar/asn1-x509';
import { spiffeId, type WorkloadIdentity } from '../identity.js';
import { derToPem } from './der-sign.js';
import { cachedSignatureScheme, emptyName, extensions, parseSpki, preEncoded, signDer, type SubjectAltNames } from './x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);
/** PKCS#9 extensionRequest: the attribute that carries the extensions a CSR asks for. */
const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

/** `ec-p256` (default: well under a millisecond to generate, cheap handshakes) or `rsa-2048` (~160 ms). */
export type WorkloadKeyType = 'ec-p256' | 'rsa-2048';
export const DEFAULT_WORKLOAD_KEY_TYPE: WorkloadKeyType = 'ec-p256';

export interface KeyAndCsr {
  /** PKCS#8 PEM; keep it in memory only, never log it. */
  privateKeyPem: string;
  csrPem: string;
}

export async function generateWorkloadKey(keyType: WorkloadKeyType = DEFAULT_WORKLOAD_KEY_TYPE): Promise<KeyObject> {
  const { privateKey } =
    keyType === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  return privateKey;
}

/**
 * Proxy side: a fresh key (ECDSA P-256 unless asked otherwise) and a CSR carrying the SPIFFE URI the
 * workload expects. The CA ignores the CSR's names and uses the authenticated identity instead.
 */
export async function generateKeyAndCsr(identity: WorkloadIdentity, keyType?: WorkloadKeyType): Promise<KeyAndCsr> {
  const privateKey = await generateWorkloadKey(keyType);
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: derToPem(buildCsr(privateKey, { uris: [spiffeId(identity)] }), 'CERTIFICATE REQUEST'),
  };
}

/** A PKCS#10 request with an empty subject and the SAN asked for (the CA decides the real names). */
export function buildCsr(key: KeyObject, names: SubjectAltNames): Buffer {
  const scheme = cachedSignatureScheme(key);
  const extensionRequest = new Attribute({
    type: EXTENSION_REQUEST_OID,
    values: [AsnConvert.serialize(new Extensions([extensions.subjectAltName(names, false)]))],
  });
  // Encoded once for both the signature and the request.
  const certificationRequestInfo = preEncoded(
    new CertificationRequestInfo({
      subject: emptyName(),
      subjectPKInfo: parseSpki(createPublicKey(key).export({ type: 'spki', format: 'der' })),
      attributes: new Attributes([extensionRequest]),
    }),
  );
  const signature = signDer(new Uint8Array(AsnConvert.serialize(certificationRequestInfo)), key, scheme);
  return Buffer.from(AsnConvert.serialize(new CertificationRequest({ certificationRequestInfo, signatureAlgorithm: scheme.algorithm, signature })));
}
