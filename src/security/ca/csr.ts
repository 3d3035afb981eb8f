import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { spiffeId, type WorkloadIdentity } from '../identity.js';
import { derToPem, signCsrDer } from './der-sign.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeyAndCsr {
  /** PKCS#8 PEM; keep it in memory only, never log it. */
  privateKeyPem: string;
  csrPem: string;
}

/**
 * Proxy side: a fresh RSA-2048 key (node:crypto, ~160 ms) and a CSR carrying the SPIFFE URI the
 * workload expects. The CA ignores the CSR's names and uses the authenticated identity instead.
 */
export async function generateKeyAndCsr(identity: WorkloadIdentity): Promise<KeyAndCsr> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  csr.setSubject([]);
  csr.setAttributes([
    { name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames: [{ type: 6, value: spiffeId(identity) }] }] },
  ]);
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: derToPem(signCsrDer(csr, privateKey), 'CERTIFICATE REQUEST'),
  };
}
