import { BlockList, isIP } from 'node:net';

/** Strips IPv4-mapped IPv6 (`::ffff:10.0.0.1`, as node reports on dual-stack sockets). */
export function normaliseIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1] : ip;
}

/**
 * Compiles CIDRs (v4 and v6; a bare address means /32 or /128) into a matcher. Invalid entries
 * never match (validation reports them upstream); they are returned in `invalid`.
 */
export function compileCidrs(cidrs: string[]): { matches(ip: string | undefined): boolean; invalid: string[] } {
  const list = new BlockList();
  const invalid: string[] = [];
  for (const raw of cidrs) {
    const [address, prefixText] = raw.trim().split('/');
    const ip = normaliseIp(address ?? '');
    const family = isIP(ip);
    const prefix = prefixText === undefined ? (family === 6 ? 128 : 32) : Number(prefixText);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
      invalid.push(raw);
      continue;
    }
    list.addSubnet(ip, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return {
    invalid,
    matches(ipRaw) {
      if (!ipRaw) return false;
      const ip = normaliseIp(ipRaw);
      const family = isIP(ip);
      if (family === 0) return false;
      return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
    },
  };
}
