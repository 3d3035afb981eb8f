import type { MeshObject } from '../../mesh/object.js';
import type { GatewaySpec, Server } from '../../mesh/api/index.js';
import type { GatewayListener, ProxyIdentity, RouteConfig, VirtualHost } from '../../mesh/snapshot.js';
import { byString, compact, freezeShared, exportedTo, intersectHosts, labelsMatch, namespaceOf, objectKey } from './common.js';
import { labelsKey, type ClusterIndex, type IndexedVirtualService } from './cluster-index.js';
import { buildClustersAndEndpoints, type OutboundConfig } from './outbound.js';
import type { ClusterRef, WorkloadContext } from './translate-route.js';
import { buildVirtualServiceRoutes } from './outbound.js';

/** Gateways whose selector matches the proxy's labels (an empty selector matches every gateway proxy). */
export function selectGateways(index: ClusterIndex, proxy: ProxyIdentity): MeshObject<GatewaySpec>[] {
  return index.gateways.filter((g) => labelsMatch(g.spec.selector, proxy.labels));
}

interface BoundServer {
  gateway: string;
  gatewayNamespace: string;
  server: Server;
}

const LISTENER_PROTOCOLS: Record<string, GatewayListener['protocol']> = {
  HTTP: 'HTTP',
  HTTPS: 'HTTPS',
  HTTP2: 'HTTP2',
  GRPC: 'HTTP2',
  TLS: 'TLS',
};

function translateListener(port: number, servers: BoundServer[]): GatewayListener {
  const first = servers[0].server;
  const withTls = servers.find((s) => s.server.tls && s.server.tls.mode)?.server.tls;
  const hosts = [...new Set(servers.flatMap((s) => s.server.hosts.map(stripNamespace)))].sort(byString);
  const bind = first.bind;
  return compact({
    name: `${bind ?? '0.0.0.0'}_${port}`,
    port,
    bind,
    protocol: LISTENER_PROTOCOLS[first.port.protocol?.toUpperCase()] ?? 'TCP',
    hosts,
    tls: withTls
      ? compact({
          mode: withTls.mode!,
          serverCertificate: withTls.serverCertificate,
          privateKey: withTls.privateKey,
          caCertificates: withTls.caCertificates,
          credentialName: withTls.credentialName,
          minProtocolVersion: withTls.minProtocolVersion,
        })
      : undefined,
    httpsRedirect: servers.some((s) => s.server.tls?.httpsRedirect) ? true : undefined,
    routeConfig: `http.${port}`,
  });
}

function stripNamespace(host: string): string {
  const slash = host.indexOf('/');
  return slash < 0 ? host : host.slice(slash + 1);
}

/** Server host `ns/host`: `*` any namespace, `.` the gateway's own; without a prefix, any namespace. */
function serverHostAdmits(serverHost: string, gatewayNamespace: string, vs: IndexedVirtualService): string {
  const slash = serverHost.indexOf('/');
  if (slash < 0) return serverHost;
  const ns = serverHost.slice(0, slash);
  const host = serverHost.slice(slash + 1);
  if (ns === '*' || ns === vs.namespace || (ns === '.' && gatewayNamespace === vs.namespace)) return host;
  return '';
}

function buildGatewayRouteConfig(index: ClusterIndex, proxy: ProxyIdentity, port: number, servers: BoundServer[], referenced: Map<string, ClusterRef>): RouteConfig {
  const gatewayKeys = [...new Set(servers.map((s) => s.gateway))].sort(byString);
  const virtualServices = new Map<string, IndexedVirtualService>();
  for (const key of gatewayKeys) for (const vs of index.gatewayVirtualServices.get(key) ?? []) virtualServices.set(vs.key, vs);
  const byHost = new Map<string, IndexedVirtualService[]>();
  for (const vs of [...virtualServices.values()].sort((a, b) => byString(a.key, b.key))) {
    const matched = new Set<string>();
    for (const bound of servers) {
      if (!vs.gateways.includes(bound.gateway)) continue;
      if (!exportedTo(vs.exportTo ?? index.exportDefaults.virtualService, vs.namespace, bound.gatewayNamespace)) continue;
      for (const serverHost of bound.server.hosts) {
        const admitted = serverHostAdmits(serverHost, bound.gatewayNamespace, vs);
        if (!admitted) continue;
        for (const vsHost of vs.hosts) {
          const host = intersectHosts(vsHost, admitted);
          if (host) matched.add(host);
        }
      }
    }
    for (const host of matched) {
      const list = byHost.get(host);
      if (list) list.push(vs);
      else byHost.set(host, [vs]);
    }
  }
  const workload: WorkloadContext = { labels: proxy.labels, namespace: proxy.namespace, gateways: new Set(gatewayKeys) };
  const virtualHosts: VirtualHost[] = [...byHost.keys()].sort(byString).map((host) => ({
    name: `${host}:${port}`,
    domains: host === '*' ? ['*'] : [host, `${host}:${port}`],
    routes: buildVirtualServiceRoutes(byHost.get(host)!, workload, referenced),
  }));
  return { name: `http.${port}`, virtualHosts };
}

export interface GatewayConfig extends Omit<OutboundConfig, 'routeConfig'> {
  routeConfigs: RouteConfig[];
  listeners: GatewayListener[];
}

/**
 * A gateway proxy: one listener per port of the Gateway servers that select it, route configs
 * `http.<port>` from the VirtualServices bound to those Gateways whose hosts meet the server
 * hosts, and clusters for every service exported to its namespace plus what its routes use.
 */
export function buildGatewayConfig(index: ClusterIndex, proxy: ProxyIdentity): GatewayConfig {
  const gateways = selectGateways(index, proxy);
  const memoKey = `gateway|${proxy.namespace}|${labelsKey(proxy.labels)}`;
  const memoised = index.memo.get(memoKey) as GatewayConfig | undefined;
  if (memoised) return memoised;
  const byPort = new Map<number, BoundServer[]>();
  for (const gateway of gateways) {
    for (const server of gateway.spec.servers ?? []) {
      const bound: BoundServer = { gateway: objectKey(gateway), gatewayNamespace: namespaceOf(gateway), server };
      const list = byPort.get(server.port.number);
      if (list) list.push(bound);
      else byPort.set(server.port.number, [bound]);
    }
  }
  const ports = [...byPort.keys()].sort((a, b) => a - b);
  const referenced = new Map<string, ClusterRef>();
  const listeners = ports.map((port) => translateListener(port, byPort.get(port)!));
  const routeConfigs = ports.map((port) => buildGatewayRouteConfig(index, proxy, port, byPort.get(port)!, referenced));
  const services = index.serviceList.filter((s) => exportedTo(s.exportTo ?? index.exportDefaults.service, s.namespace, proxy.namespace));
  const { clusters, endpoints } = buildClustersAndEndpoints(index, proxy.namespace, proxy.labels, services, referenced);
  const result: GatewayConfig = freezeShared({ routeConfigs, listeners, clusters, endpoints });
  index.memo.set(memoKey, result);
  return result;
}
