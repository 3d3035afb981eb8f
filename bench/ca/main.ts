/**
 * CA issuing rate: workload certificates per second through Trellis's path (node:crypto signs the
 * forge-built TBSCertificate) against forge's own pure-JS path (certificationRequestFromPem +
 * csr.verify + cert.sign). Goal (issue 6): ≥ 500 certificates/s.
 *
 *   node --import tsx bench/ca/main.ts [--quick]
 */
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { CertificateAuthority } from '../../src/security/ca/certificate-authority.js';
import { generateKeyAndCsr } from '../../src/security/ca/csr.js';

const quick = process.argv.includes('--quick');
const GOAL_PER_SECOND = 500;

interface Row {
  path: string;
  certificates: number;
  seconds: number;
  perSecond: number;
  msPerCert: number;
}

function measure(path: string, count: number, issue: () => void): Row {
  for (let i = 0; i < Math.min(20, count); i++) issue(); // warm-up
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) issue();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { path, certificates: count, seconds, perSecond: count / seconds, msPerCert: (seconds * 1000) / count };
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-bench-ca-'));
  try {
    const ca = await CertificateAuthority.open({ trustDomain: 'cluster.local', stateDir });
    const identity = { trustDomain: 'cluster.local', namespace: 'bench', serviceAccount: 'proxy' };
    const { csrPem } = await generateKeyAndCsr(identity);

    const fast = measure('node:crypto signing (Trellis)', quick ? 500 : 3000, () => {
      ca.issueWorkloadCertificate(csrPem, identity);
    });

    // The floor: one bare RSA-2048 signature over a TBS-sized buffer (shows how loaded the machine is).
    const rootKeyObject = createPrivateKey(readFileSync(join(stateDir, 'ca', 'root-key.pem'), 'utf8'));
    const tbsSized = Buffer.alloc(700, 7);
    const floor = measure('bare RSA-2048 sign (floor)', quick ? 500 : 3000, () => {
      sign('sha256', tbsSized, rootKeyObject);
    });

    const rootKey = forge.pki.privateKeyFromPem(readFileSync(join(stateDir, 'ca', 'root-key.pem'), 'utf8'));
    const rootCert = forge.pki.certificateFromPem(ca.rootCertPem);
    const uri = `spiffe://${identity.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
    let serial = 1;
    const forgeRow = measure('forge cert.sign (pure JS)', quick ? 30 : 150, () => {
      const csr = forge.pki.certificationRequestFromPem(csrPem);
      if (!csr.verify()) throw new Error('csr does not verify');
      const cert = forge.pki.createCertificate();
      cert.publicKey = csr.publicKey!;
      cert.serialNumber = (serial++).toString(16).padStart(32, '4');
      cert.validity.notBefore = new Date();
      cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
      cert.setSubject([]);
      cert.setIssuer(rootCert.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'subjectAltName', critical: true, altNames: [{ type: 6, value: uri }] },
      ]);
      cert.sign(rootKey, forge.md.sha256.create());
      forge.pki.certificateToPem(cert);
    });

    const rows = [fast, floor, forgeRow];
    const speedup = fast.perSecond / forgeRow.perSecond;
    console.log(`CA workload certificate issuing (RSA-2048 CA, RSA-2048 CSR)${quick ? ' --quick' : ''}`);
    console.log('path                             certs   seconds   certs/s   ms/cert');
    for (const row of rows) {
      console.log(
        `${row.path.padEnd(32)} ${String(row.certificates).padStart(5)} ${row.seconds.toFixed(2).padStart(9)} ${row.perSecond
          .toFixed(0)
          .padStart(9)} ${row.msPerCert.toFixed(2).padStart(9)}`,
      );
    }
    console.log(`speed-up ${speedup.toFixed(1)}x; goal ≥ ${GOAL_PER_SECOND}/s: ${fast.perSecond >= GOAL_PER_SECOND ? 'met' : 'NOT met'}`);
    console.log(
      JSON.stringify({
        bench: 'ca',
        quick,
        certsPerSecond: Math.round(fast.perSecond),
        forgeCertsPerSecond: Math.round(forgeRow.perSecond),
        speedup: Number(speedup.toFixed(1)),
        bareSignaturesPerSecond: Math.round(floor.perSecond),
        goalPerSecond: GOAL_PER_SECOND,
        goalMet: fast.perSecond >= GOAL_PER_SECOND,
      }),
    );
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
