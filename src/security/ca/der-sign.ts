/** PEM framing shared by the CA and the proxy side. */

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const base64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Splits a PEM bundle into its certificate blocks (each ending with a newline). */
export function splitPemCertificates(bundle: string): string[] {
  const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => `${block}\n`);
}

/** The DER inside the first PEM block labelled `label` (a regex fragment, e.g. `(?:NEW )?CERTIFICATE REQUEST`). */
export function pemToDer(pem: string, label: string): Buffer {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(pem);
  if (!match) throw new Error(`no ${label} PEM block`);
  return Buffer.from(match[1].replace(/\s+/g, ''), 'base64');
}
