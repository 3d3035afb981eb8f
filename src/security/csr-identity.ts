import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import { CaError } from './errors.js';

/** PKCS#9 extensionRequest: where a CSR asks for extensions such as subjectAltName. */
const EXTENSION_REQUEST_OID = '1.2.840.113549.1.9.14';

/**
 * The URI SANs a CSR asks for. The CA signs the authenticated identity whatever the CSR says, so
 * this only serves to refuse a renewal whose CSR names another identity than its certificate.
 * Throws CaError CSR_PARSE on a CSR that does not decode.
 */
export function requestedUrisOf(csrPem: string): string[] {
  try {
    const base64 = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]+?)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(csrPem)?.[1];
    if (!base64) throw new Error('no CERTIFICATE REQUEST PEM block');
    const request = AsnConvert.parse(Buffer.from(base64.replace(/\s+/g, ''), 'base64'), CertificationRequest);
    const uris: string[] = [];
    for (const attribute of request.certificationRequestInfo.attributes ?? []) {
      if (attribute.type !== EXTENSION_REQUEST_OID) continue;
      for (const value of attribute.values) {
        for (const extension of AsnConvert.parse(value, Extensions)) {
          if (extension.extnID !== id_ce_subjectAltName) continue;
          for (const name of AsnConvert.parse(extension.extnValue, SubjectAlternativeName)) {
            if (name.uniformResourceIdentifier) uris.push(name.uniformResourceIdentifier);
          }
        }
      }
    }
    return uris;
  } catch (error) {
    throw new CaError('CSR_PARSE', `CSR parse failed: ${(error as Error).message}`, { cause: error });
  }
}
