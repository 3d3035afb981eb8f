import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temp dirs removed in afterAll/afterEach via `cleanup()`. */
export function tempDirs(): { make(prefix?: string): string; cleanup(): void } {
  const dirs: string[] = [];
  return {
    make(prefix = 'trellis-sec-') {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    cleanup() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * Builds an independent root + intermediate with the openssl CLI (not our code), in Istio's
 * cacerts layout: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem.
 */
export function makeOpensslCa(dir: string, name = 'Plugin', keyAlgorithm: 'rsa' | 'ec' = 'rsa'): {
  certFile: string;
  keyFile: string;
  rootFile: string;
  chainFile: string;
  rootKeyFile: string;
} {
  const p = (file: string) => join(dir, file);
  const newKey = keyAlgorithm === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  writeFileSync(
    p('ext.cnf'),
    ['[ca_ext]', 'basicConstraints=critical,CA:true', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'].join('\n'),
  );
  openssl(['req', '-x509', ...newKey, '-nodes', '-keyout', p('root-key.pem'), '-out', p('root-cert.pem'),
    '-days', '30', '-subj', `/O=${name} Root`, '-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...newKey, '-nodes', '-keyout', p('ca-key.pem'), '-out', p('ca.csr'), '-subj', `/O=${name} Intermediate`]);
  openssl(['x509', '-req', '-in', p('ca.csr'), '-CA', p('root-cert.pem'), '-CAkey', p('root-key.pem'), '-CAcreateserial',
    '-out', p('ca-cert.pem'), '-days', '20', '-extfile', p('ext.cnf'), '-extensions', 'ca_ext']);
  writeFileSync(p('cert-chain.pem'), readFileSync(p('ca-cert.pem'), 'utf8') + readFileSync(p('root-cert.pem'), 'utf8'));
  return { certFile: p('ca-cert.pem'), keyFile: p('ca-key.pem'), rootFile: p('root-cert.pem'), chainFile: p('cert-chain.pem'), rootKeyFile: p('root-key.pem') };
}

