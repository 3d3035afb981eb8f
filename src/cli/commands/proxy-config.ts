import type { Command } from 'commander';
import { fetchProxyConfig } from '../../discovery/debug-client.js';
import type { ProxyConfigResponse } from '../../discovery/debug-api.js';
import type { RouteMatch, StringMatcher } from '../../mesh/snapshot.js';
import { formatTable, operatorConnection, withOperatorOptions } from './proxy-status.js';
import type { OperatorFlags } from './proxy-status.js';

export const CONFIG_TYPES = ['routes', 'clusters', 'endpoints', 'secret'] as const;
export type ConfigType = (typeof CONFIG_TYPES)[number];

function matcher(m: StringMatcher | undefined): string | undefined {
  if (!m) return undefined;
  if ('exact' in m) return m.exact;
  if ('prefix' in m) return `${m.prefix}*`;
  if ('regex' in m) return `~${m.regex}`;
  return '*';
}

function describeMatch(match: RouteMatch[]): string {
  if (match.length === 0) return '/*';
  return match
    .map((m) => {
      const parts = [matcher(m.uri) ?? '/*'];
      if (m.method) parts.push(`method=${matcher(m.method)}`);
      for (const [name, h] of Object.entries(m.headers ?? {})) parts.push(`${name}=${matcher(h)}`);
      if (m.port) parts.push(`port=${m.port}`);
      return parts.join(' ');
    })
    .join(', ');
}

/** `<namespace>/<virtualservice>/<route>` → `virtualservice.namespace`, like istioctl. */
function virtualServiceOf(routeName: string): string {
  const [ns, vs] = routeName.split('/');
  return vs ? `${vs}.${ns}` : '-';
}

export function formatRoutes(cfg: ProxyConfigResponse): string {
  const rows: string[][] = [];
  for (const rc of cfg.snapshot?.routeConfigs ?? []) {
    for (const vh of rc.virtualHosts) {
      const domains = vh.domains.length > 1 ? `${vh.domains[0]} +${vh.domains.length - 1} more...` : (vh.domains[0] ?? '');
      for (const route of vh.routes) rows.push([rc.name, vh.name, domains, describeMatch(route.match), virtualServiceOf(route.name)]);
    }
  }
  return formatTable(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'], rows);
}

export function formatClusters(cfg: ProxyConfigResponse): string {
  const rows = (cfg.snapshot?.clusters ?? []).map((c) => {
    const direction = c.name.startsWith('inbound|') ? 'inbound' : c.name.startsWith('outbound|') ? 'outbound' : '-';
    const type = c.name === 'PassthroughCluster' ? 'ORIGINAL_DST' : c.name === 'BlackHoleCluster' ? 'STATIC' : 'EDS';
    return [c.service || c.name, c.port ? String(c.port) : '-', c.subset ?? '-', direction, type, c.tls?.mode ?? (type === 'EDS' ? 'AUTO' : '-')];
  });
  return formatTable(['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'TLS'], rows);
}

export function formatEndpoints(cfg: ProxyConfigResponse): string {
  const rows: string[][] = [];
  for (const assignment of cfg.snapshot?.endpoints ?? []) {
    for (const ep of assignment.endpoints) rows.push([`${ep.address}:${ep.port}`, 'HEALTHY', 'OK', assignment.cluster, ep.tlsMode]);
  }
  return formatTable(['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER', 'TLS MODE'], rows);
}

export function formatSecret(cfg: ProxyConfigResponse, now = new Date()): string {
  const cert = cfg.proxy.certificate;
  const rows: string[][] = [];
  if (cert) {
    const valid = new Date(cert.notBefore) <= now && now <= new Date(cert.notAfter);
    rows.push(['default', 'Cert Chain', 'ACTIVE', String(valid), cert.serialNumber, cert.notAfter, cert.notBefore, cert.spiffeId ?? '-', cert.cluster ?? '-']);
  }
  // CLUSTER: the cluster the certificate is bound to (its subject OU), which discovery checks the proxy's hello against.
  return formatTable(['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE', 'SPIFFE ID', 'CLUSTER'], rows);
}

const FORMATTERS: Record<ConfigType, (cfg: ProxyConfigResponse) => string> = {
  routes: formatRoutes,
  clusters: formatClusters,
  endpoints: formatEndpoints,
  secret: formatSecret,
};

/** JSON for one type; `secret` never holds key material (the operator has none to give). */
function jsonFor(cfg: ProxyConfigResponse, type: ConfigType | undefined): unknown {
  switch (type) {
    case 'routes':
      return cfg.snapshot?.routeConfigs ?? [];
    case 'clusters':
      return cfg.snapshot?.clusters ?? [];
    case 'endpoints':
      return cfg.snapshot?.endpoints ?? [];
    case 'secret':
      return cfg.proxy.certificate ? [{ name: 'default', ...cfg.proxy.certificate }] : [];
    default:
      return cfg;
  }
}

export function register(program: Command): void {
  withOperatorOptions(
    program
      .command('proxy-config')
      .description("A proxy's configuration as the operator sent it: routes, clusters, endpoints or secret (all when omitted)")
      .argument('<proxy>', 'proxy id (<cluster>/<namespace>/<workload>/<instance>) or a unique suffix of it')
      .argument('[type]', `one of ${CONFIG_TYPES.join(', ')}`)
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (proxy: string, type: string | undefined, flags: OperatorFlags & { output: string }) => {
    if (type !== undefined && !(CONFIG_TYPES as readonly string[]).includes(type)) {
      throw new Error(`proxy-config: unknown type ${JSON.stringify(type)} (expected ${CONFIG_TYPES.join(', ')})`);
    }
    if (flags.output !== 'table' && flags.output !== 'json') throw new Error(`--output: expected table or json, got ${JSON.stringify(flags.output)}`);
    const cfg = await fetchProxyConfig(operatorConnection(flags), proxy);
    if (flags.output === 'json') {
      process.stdout.write(`${JSON.stringify(jsonFor(cfg, type as ConfigType | undefined), null, 2)}\n`);
      return;
    }
    if (!cfg.snapshot && type !== 'secret') process.stderr.write(`${cfg.proxy.id}: no snapshot rendered yet\n`);
    const types: ConfigType[] = type ? [type as ConfigType] : [...CONFIG_TYPES];
    const out = types.map((t) => (types.length > 1 ? `${t.toUpperCase()}:\n` : '') + FORMATTERS[t](cfg));
    process.stdout.write(out.join('\n'));
  });
}
