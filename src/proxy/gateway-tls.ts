import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { GatewayListener } from '../mesh/snapshot.js';

/**
 * Reads and checks the SIMPLE TLS credentials of gateway listeners at apply time; any error
 * (missing file, bad key) refuses the snapshot, naming the listener and field.
 */
export function readGatewayTls(listeners: GatewayListener[]): Map<string, { cert: string; key: string } | undefined> {
  const out = new Map<string, { cert: string; key: string } | undefined>();
  for (const l of listeners) {
    if (!l.tls || l.tls.mode === 'PASSTHROUGH' || l.tls.mode === 'AUTO_PASSTHROUGH') { out.set(l.name, undefined); continue; }
    if (l.tls.mode !== 'SIMPLE') throw new Error(`listeners ${l.name}.tls.mode: ${l.tls.mode} is not served by this proxy (SIMPLE only)`);
    if (!l.tls.serverCertificate || !l.tls.privateKey) throw new Error(`listeners ${l.name}.tls: serverCertificate and privateKey files are required for SIMPLE`);
    const read = (p: string, field: string): string => {
      try {
        return readFileSync(p, 'utf8');
      } catch (err) {
        throw new Error(`listeners ${l.name}.tls.${field} ${p}: ${(err as Error).message}`);
      }
    };
    const creds = { cert: read(l.tls.serverCertificate, 'serverCertificate'), key: read(l.tls.privateKey, 'privateKey') };
    try {
      createSecureContext(creds);
    } catch (err) {
      throw new Error(`listeners ${l.name}.tls: ${(err as Error).message}`);
    }
    out.set(l.name, creds);
  }
  return out;
}
