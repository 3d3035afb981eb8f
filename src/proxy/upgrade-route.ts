import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxySnapshot } from '../mesh/snapshot.js';
import type { InboundContext, InboundFilter } from './extensions.js';
import type { ListenerInfo, ProxyState } from './proxy-state.js';
import type { ClusterRuntime } from './upstream/cluster.js';
import { matchRoute, pickDestination, rewritePath, type RouteRequest } from './routing/route-table.js';
import { applyHeaderOps } from './routing/header-ops.js';
import { endToEndHeaders } from './http/hop-by-hop.js';
import { hostPort, parseAbsoluteForm, splitHostPort } from './http/request-target.js';
import { tunnelUpgrade } from './http/upgrade.js';
import { RESPONSE_FLAGS_HEADER } from './errors.js';
import { ensureRequestId } from './observe.js';

/** What upgrade routing reads from the proxy; functions, because the state swaps on every apply. */
export interface UpgradeEnv {
  state(): ProxyState | undefined;
  inboundCluster(): ClusterRuntime | undefined;
  inboundFilter(): InboundFilter | undefined;
  random(): number;
  inboundContext(req: IncomingMessage, snapshot: ProxySnapshot, l: ListenerInfo): InboundContext;
}

/**
 * WebSocket / Upgrade requests (served by the node:http fallback): authorized like plain inbound
 * requests, routed like any request (first matching route, weighted pick, header ops, rewrites),
 * then tunnelled byte for byte to the chosen endpoint.
 */
export function routeUpgrade(env: UpgradeEnv, req: IncomingMessage, socket: Duplex, head: Buffer, l: ListenerInfo): void {
  const filter = env.inboundFilter();
  const state = env.state();
  if (l.kind === 'inbound' && filter && state) {
    // Upgrades are authorized exactly like plain inbound requests.
    socket.pause();
    filter(req, env.inboundContext(req, state.snapshot, l)).then(
      (denial) => {
        if (!denial) return upgradeAllowed(env, req, socket, head, l);
        const body = denial.body ?? '';
        let extra = '';
        for (const [k, v] of Object.entries(denial.headers ?? {})) extra += `${k}: ${v}\r\n`;
        socket.end(`HTTP/1.1 ${denial.status} Denied\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}${RESPONSE_FLAGS_HEADER}: UAEX\r\nconnection: close\r\n\r\n${body}`);
      },
      () => socket.end(`HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n${RESPONSE_FLAGS_HEADER}: UAEX\r\nconnection: close\r\n\r\n`),
    );
    return;
  }
  upgradeAllowed(env, req, socket, head, l);
}

function upgradeAllowed(env: UpgradeEnv, req: IncomingMessage, socket: Duplex, head: Buffer, l: ListenerInfo): void {
  // A socket paused for the inbound filter resumes when tunnelUpgrade pipes it.
  const refuse = (status: number, flag: string, text: string): void => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-length: 0\r\n${RESPONSE_FLAGS_HEADER}: ${flag}\r\nconnection: close\r\n\r\n`);
  };
  const state = env.state();
  if (!state) return refuse(503, 'NC', 'Service Unavailable');
  let url = req.url ?? '/';
  let authority = req.headers.host ?? '';
  if (url.charCodeAt(0) !== 47 && l.kind === 'outbound') {
    const parsed = parseAbsoluteForm(url);
    if (parsed) { authority = parsed.authority; url = parsed.path; }
  }
  const headers = endToEndHeaders(req.headers);
  headers.host = authority;
  ensureRequestId(headers as never);
  const remote = req.socket.remoteAddress;
  if (remote) headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${remote}` : remote;
  const upgrade = String(req.headers.upgrade ?? 'websocket');
  let cluster: ClusterRuntime | undefined;
  let path = url;
  if (l.kind === 'inbound') cluster = env.inboundCluster();
  else {
    const host = authority.toLowerCase();
    const q = url.indexOf('?');
    const rr: RouteRequest = { host, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), method: req.method ?? 'GET', scheme: l.scheme, port: l.kind === 'gateway' ? l.port : hostPort(host, l.scheme), headers: req.headers };
    const table = state.tables.get(l.routeConfig);
    const d = table ? matchRoute(table, rr) : undefined;
    if (!d) {
      if (l.kind === 'outbound' && state.snapshot.mesh.outboundTrafficPolicy === 'ALLOW_ANY' && host) {
        const { address, port } = splitHostPort(host, 80);
        tunnelUpgrade(socket, head, req.method ?? 'GET', url, headers, upgrade, { address, port }, 10_000, () => undefined);
        return;
      }
      return refuse(l.kind === 'outbound' ? 502 : 404, 'NR', 'No Route');
    }
    if (d.route.action !== 'route') return refuse(403, 'NR', 'Forbidden');
    const dest = pickDestination(d.route, env.random);
    applyHeaderOps(headers, dest.requestHeaders);
    applyHeaderOps(headers, d.route.requestHeaders);
    if (d.route.rewrite?.authority !== undefined) headers.host = d.route.rewrite.authority;
    path = rewritePath(d.route, d.match, rr.path, rr.query) ?? url;
    cluster = state.clusters.get(dest.cluster);
  }
  if (!cluster) return refuse(503, 'NC', 'Service Unavailable');
  const host = cluster.pick(undefined, env.random);
  if (!host) return refuse(503, 'UH', 'Service Unavailable');
  host.acquire();
  cluster.active++;
  const c = cluster;
  const tls = host.tls ? withAutoSni(host.tls, headers.host) : undefined;
  tunnelUpgrade(socket, head, req.method ?? 'GET', path, headers, upgrade, { address: host.endpoint.address, port: host.endpoint.port, tls }, c.def.connectionPool.connectTimeoutMs || 10_000, () => {
    host.release();
    c.active--;
  });
}

/**
 * SNI (and the name a SIMPLE certificate is checked against) from the Host header when the
 * DestinationRule sets no `sni`: Istio's auto SNI, and what undici does for plain requests.
 */
function withAutoSni(tls: Record<string, unknown>, authority: string | string[] | undefined): Record<string, unknown> {
  if (tls.servername !== undefined || typeof authority !== 'string') return tls;
  const { address } = splitHostPort(authority, 443);
  return address && isIP(address) === 0 ? { ...tls, servername: address } : tls;
}
