/** Request-target and authority parsing (pure). */

/** `http://host:port/path?q` (forward-proxy absolute form) to authority + origin-form path. */
export function parseAbsoluteForm(url: string): { authority: string; path: string } | undefined {
  const sep = url.indexOf('://');
  if (sep < 0) return undefined;
  const rest = url.slice(sep + 3);
  const slash = rest.search(/[/?]/);
  if (slash < 0) return { authority: rest, path: '/' };
  const path = rest.slice(slash);
  return { authority: rest.slice(0, slash), path: path.startsWith('?') ? `/${path}` : path };
}

/** The port a Host header addresses, else the scheme's default. */
export function hostPort(host: string, scheme: string): number {
  const m = /:(\d+)$/.exec(host);
  return m ? Number(m[1]) : scheme === 'https' ? 443 : 80;
}

/** `host:port` or `[v6]:port` to address and port. */
export function splitHostPort(authority: string, defaultPort: number): { address: string; port: number } {
  const m = /^(.*?)(?::(\d+))?$/.exec(authority)!;
  let address = m[1];
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  return { address, port: m[2] ? Number(m[2]) : defaultPort };
}
