import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { GatewayListener } from '../mesh/snapshot.js';

export interface GatewayTls {
  /** Listener name → SIMPLE credentials, or undefined for plaintext HTTP listeners. */
  creds: Map<string, { cert: string; key: string } | undefined>;
  /** Listeners this proxy does not serve, with the reason (reported on /server_info, never fatal). */
  skipped: Map<string, string>;
}

/**
 * Reads and checks the TLS credentials of gateway listeners at apply time. A SIMPLE listener whose
 * files are missing or invalid refuses the snapshot (naming listener and field); modes this proxy
 * does not terminate (MUTUAL, PASSTHROUGH, credentialName-only, …) skip that listener only.
 */
export function readGatewayTls(listeners: GatewayListener[]): GatewayTls {
  const creds = new Map<string, { cert: string; key: string } | undefined>();
  const skipped = new Map<string, string>();
  for (const l of listeners) {
    if (l.protocol === 'TCP' || l.protocol === 'TLS') { skipped.set(l.name, `protocol ${l.protocol} is not served (HTTP and HTTPS only)`); continue; }
    if (!l.tls) { creds.set(l.name, undefined); continue; }
    if (l.tls.mode !== 'SIMPLE') { skipped.set(l.name, `tls.mode ${l.tls.mode} is not served (SIMPLE only)`); continue; }
    if (!l.tls.serverCertificate || !l.tls.privateKey) {
      skipped.set(l.name, `tls: SIMPLE needs serverCertificate and privateKey files${l.tls.credentialName ? ` (credentialName ${l.tls.credentialName} is not resolved by this proxy)` : ''}`);
      continue;
    }
    const read = (p: string, field: string): string => {
      try {
        return readFileSync(p, 'utf8');
      } catch (err) {
        throw new Error(`listeners ${l.name}.tls.${field} ${p}: ${(err as Error).message}`);
      }
    };
    const pair = { cert: read(l.tls.serverCertificate, 'serverCertificate'), key: read(l.tls.privateKey, 'privateKey') };
    try {
      createSecureContext(pair);
    } catch (err) {
      throw new Error(`listeners ${l.name}.tls: ${(err as Error).message}`);
    }
    creds.set(l.name, pair);
  }
  return { creds, skipped };
}
