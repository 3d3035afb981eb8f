import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { GatewayListener, PeerAuthMode, ProxySnapshot, UpstreamCluster } from '../mesh/snapshot.js';
import { compileRouteTable, matchRoute, pickDestination, redirectLocation, rewritePath, type CompiledRoute, type RouteRequest, type RouteTable } from './routing/route-table.js';
import { applyHeaderOps } from './routing/header-ops.js';
import { evaluateCors } from './routing/cors.js';
import { compileRetry } from './resilience/retry-policy.js';
import { sendMirror } from './resilience/mirror.js';
import { ClusterManager, type PreparedClusters } from './upstream/cluster-manager.js';
import { ClusterRuntime } from './upstream/cluster.js';
import { endToEndHeaders, type HeaderMap } from './http/hop-by-hop.js';
import { Exchange, REPLAY_BUFFER_LIMIT, type ExchangeOutcome } from './http/exchange.js';
import { PROXY_ERRORS, RESPONSE_FLAGS_HEADER, type ProxyErrorCode } from './errors.js';
import { Observer, ensureRequestId } from './observe.js';
import { hostPort, parseAbsoluteForm, splitHostPort } from './http/request-target.js';
import { listenOn, replayingStream } from './listen.js';
import { readGatewayTls, type GatewayTls } from './gateway-tls.js';
import type { VersionStats } from './telemetry/index.js';
import { validateProxySnapshot } from './snapshot-validate.js';
import type { InboundContext } from './extensions.js';
import { DEFAULT_POOL_FOR_LOCAL } from './local-cluster.js';
import { persistSnapshot, loadPersistedSnapshot } from './state-store.js';
import type { ListenerInfo, ProxyState, RouteRuntime } from './proxy-state.js';
import { routeUpgrade, type UpgradeEnv } from './upgrade-route.js';
import { connectionPrincipals } from './peer-principal.js';
import type { ApplyResult, ClusterView, Proxy, ProxyOptions, ProxyStatus } from './proxy-api.js';
import { LeanHttpServer, type LeanRequest, type LeanResponse } from './h1/downstream.js';
import type { ProxyRequest, ProxyResponse } from './http/types.js';

export const PROXY_VERSION = '0.1.0';

export type { ProxyOptions, ApplyResult, ProxyStatus, Proxy, ClusterView } from './proxy-api.js';




/** What a traffic listener is served by: node:https (TLS) or the lean fast path (plaintext). */
type TrafficServer = HttpsServer | LeanHttpServer;

interface GatewayServer {
  key: string;
  listener: GatewayListener;
  server: TrafficServer;
  port: number | undefined;
  bound: Promise<void>;
  tlsOn: boolean;
}

const NO_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

class TrellisProxy implements Proxy {
  readonly ports: Proxy['ports'] = { gateway: {} };
  private state: ProxyState | undefined;
  private readonly clusterManager: ClusterManager;
  private readonly observer = new Observer();
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly startedAt = Date.now();
  private snapshotSource: string | undefined;
  private appliedAt: string | undefined;
  private lastRejected: ProxyStatus['lastRejected'];
  private draining = false;
  private inflight = 0;
  private readonly drainWaiters: Array<() => void> = [];
  private readonly servers: Array<Server | NetServer> = [];
  private readonly sockets = new Set<Duplex>();
  private readonly gateways = new Map<string, GatewayServer>();
  private readonly passthrough = new Map<string, ClusterRuntime>();
  private inboundCluster: ClusterRuntime | undefined;
  private readonly listenerErrors: string[] = [];
  private skippedListeners: string[] = [];
  private readonly httpHandlers = new Map<TrafficServer, ListenerInfo>();
  private readonly leanServers: LeanHttpServer[] = [];

  constructor(private readonly opts: ProxyOptions) {
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.random = opts.random ?? Math.random;
    this.clusterManager = new ClusterManager(opts.tls ? (c) => opts.tls!.clientContext(c) : undefined);
    if (opts.mode === 'sidecar' && opts.appPort !== undefined) {
      const c: UpstreamCluster = {
        name: `inbound|${opts.appPort}||`,
        service: 'inbound',
        port: opts.appPort,
        lb: { simple: 'LEAST_REQUEST' },
        connectionPool: DEFAULT_POOL_FOR_LOCAL,
      };
      this.inboundCluster = new ClusterRuntime(c, 'inbound', { connections: null, connectTimeoutMs: 10_000, maxRequestsPerConnection: 0, idleTimeoutMs: 3_600_000, scheme: 'http' });
      this.inboundCluster.setEndpoints([{ address: opts.appHost ?? '127.0.0.1', port: opts.appPort, labels: {}, tlsMode: 'disabled', weight: 1 }]);
    }
  }

  // ------------------------------------------------------------------ snapshots

  reportRejected(reason: string, source: string): void {
    this.lastRejected = { at: new Date().toISOString(), reason, source };
    this.log.warn({ source, reason }, 'snapshot refused; the last good snapshot stays in force');
  }

  applySnapshot(value: unknown, source = 'api'): ApplyResult {
    const refuse = (reason: string): ApplyResult => {
      this.reportRejected(reason, source);
      return { ok: false, error: reason };
    };
    const checked = validateProxySnapshot(value);
    if (!checked.ok) return refuse(checked.errors.join('; '));
    const s = checked.snapshot;
    if (s.proxy.mode !== this.opts.mode) return refuse(`proxy.mode: snapshot is for a ${s.proxy.mode}, this proxy runs as ${this.opts.mode}`);
    if (this.state && this.state.snapshot.version === s.version) return { ok: true, version: s.version, unchanged: true };
    let tables: Map<string, RouteTable>;
    let prepared: PreparedClusters;
    let gatewayTls: GatewayTls;
    try {
      tables = new Map();
      for (const rc of s.routeConfigs) {
        const t = compileRouteTable(rc);
        attachRouteRuntime(t);
        tables.set(rc.name, t);
      }
      prepared = this.clusterManager.prepare(s);
      gatewayTls = this.opts.mode === 'gateway' ? readGatewayTls(s.listeners) : { creds: new Map(), skipped: new Map() };
    } catch (err) {
      return refuse((err as Error).message);
    }
    this.clusterManager.commit(prepared);
    this.state = { snapshot: s, tables, clusters: prepared.clusters };
    this.observer.apply(s, this.opts.accessLogDestination);
    if (this.opts.mode === 'gateway') this.reconcileGateways(s.listeners, gatewayTls);
    this.snapshotSource = source;
    this.appliedAt = new Date().toISOString();
    if (this.opts.stateDir) {
      try {
        persistSnapshot(this.opts.stateDir, s);
      } catch (err) {
        this.log.error({ err: (err as Error).message, stateDir: this.opts.stateDir }, 'could not persist the snapshot');
      }
    }
    this.log.info({ version: s.version, meshVersion: s.meshVersion, source }, 'snapshot applied');
    return { ok: true, version: s.version };
  }

  currentSnapshot(): ProxySnapshot | undefined {
    return this.state?.snapshot;
  }

  reloadTls(): void {
    const state = this.state;
    if (!state) return;
    try {
      const prepared = this.clusterManager.prepare(state.snapshot);
      this.clusterManager.commit(prepared);
      this.state = { ...state, clusters: prepared.clusters };
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'TLS reload failed; clusters keep their current credentials');
    }
  }

  // ------------------------------------------------------------------ listeners

  async listen(): Promise<void> {
    const bind = this.opts.bindAddress ?? '0.0.0.0';
    if (this.opts.mode === 'sidecar') {
      if (this.opts.outboundPort !== undefined) {
        const info: ListenerInfo = { kind: 'outbound', scheme: 'http', port: 0, routeConfig: 'outbound', httpsRedirect: false };
        const server = this.leanServer(info);
        info.port = await listenOn(server.net, this.opts.outboundPort, bind);
        this.ports.outbound = info.port;
      }
      if (this.opts.inboundPort !== undefined) {
        this.ports.inbound = await this.listenInbound(this.opts.inboundPort, bind);
      }
    }
    if (this.opts.adminPort !== undefined) {
      const { createAdminServer } = await import('./admin.js');
      const admin = createAdminServer(this);
      this.servers.push(admin);
      this.trackSockets(admin);
      this.ports.admin = await listenOn(admin, this.opts.adminPort, this.opts.adminAddress ?? '127.0.0.1');
    }
  }

  private httpsServer(info: ListenerInfo, tlsOptions: { cert: string; key: string }): HttpsServer {
    const server = createHttpsServer({ ...tlsOptions });
    this.configureHttpServer(server, info);
    this.httpHandlers.set(server, info);
    return server;
  }

  /**
   * A plaintext listener on the lean HTTP/1.1 fast path; Upgrade, CONNECT and Expect requests
   * are handed to a node:http server (never listening itself) configured like any other.
   */
  private leanServer(info: ListenerInfo): LeanHttpServer {
    const fallback = createHttpServer();
    this.configureHttpServer(fallback, info);
    const lean = new LeanHttpServer({
      onRequest: (req: LeanRequest, res: LeanResponse) => this.handle(req, res, info),
      fallback,
      headTimeoutMs: this.opts.headTimeoutMs,
      fastPath: this.opts.fastPath,
    });
    this.leanServers.push(lean);
    this.servers.push(lean.net);
    this.trackSockets(lean.net);
    this.httpHandlers.set(lean, info);
    return lean;
  }

  private configureHttpServer(server: Server, info: ListenerInfo): void {
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 0;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req as ProxyRequest, res, info));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head, info));
    server.on('clientError', (_err, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.servers.push(server);
    this.trackSockets(server);
  }

  private trackSockets(server: Server | NetServer): void {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /**
   * The inbound listener: plaintext HTTP, and TLS too when the security extension provides a
   * server context (the first byte tells them apart, so PERMISSIVE works on one port).
   */
  private async listenInbound(port: number, bind: string): Promise<number> {
    const info: ListenerInfo = { kind: 'inbound', scheme: 'http', port: 0, routeConfig: '', httpsRedirect: false };
    const plain = this.leanServer(info);
    const tlsInfo: ListenerInfo = { ...info, scheme: 'https' };
    let secure: HttpsServer | undefined;
    let lastCtx: object | undefined;
    const front = createNetServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      // PeerAuthentication is decided per connection, by the snapshot in force when it opens.
      const mode = this.inboundMode(socket.localPort ?? info.port);
      socket.once('data', (first: Buffer) => {
        socket.pause();
        const hello = first[0] === 0x16;
        // DISABLE offers no TLS: a ClientHello is just bytes the HTTP parser refuses.
        const ctx = hello && mode !== 'DISABLE' ? this.opts.tls?.serverContext() : undefined;
        if (!ctx && mode === 'STRICT') {
          // Istio's sidecar has no plaintext filter chain on a STRICT port: reset, no HTTP answer
          // (also for a ClientHello while no server certificate is available).
          this.log.debug({ remoteAddress: socket.remoteAddress, port: info.port, tls: hello }, 'connection refused (STRICT)');
          socket.resetAndDestroy();
          return;
        }
        if (ctx) {
          if (!secure) {
            secure = createHttpsServer({ ...ctx });
            this.configureHttpServer(secure, tlsInfo);
          } else if (ctx !== lastCtx) secure.setSecureContext(ctx);
          // Building a secure context costs a key parse: only when the provider hands out a new one (rotation).
          lastCtx = ctx;
          // TLS reads the socket's handle directly and would miss the sniffed bytes: hand it a JS stream.
          secure.emit('connection', replayingStream(socket, first));
          return;
        }
        plain.handleConnection(socket, first);
        socket.resume();
      });
    });
    this.servers.push(front);
    const bound = await listenOn(front, port, bind);
    info.port = bound;
    tlsInfo.port = bound;
    return bound;
  }

  /**
   * The inbound port's PeerAuthentication mode (portLevelMtls overrides the workload mode).
   * Enforced only when the proxy can terminate mesh TLS; before any snapshot, PERMISSIVE.
   */
  private inboundMode(port: number): PeerAuthMode {
    const inbound = this.state?.snapshot.inbound;
    if (!inbound || !this.opts.tls) return 'PERMISSIVE';
    return inbound.portLevelMtls[String(port)] ?? inbound.mtlsMode;
  }

  private reconcileGateways(listeners: GatewayListener[], gatewayTls: GatewayTls): void {
    const tls = gatewayTls.creds;
    this.skippedListeners = [...gatewayTls.skipped].map(([name, reason]) => `listener ${name}: ${reason}`);
    for (const reason of this.skippedListeners) this.log.warn({ reason }, 'gateway listener not served');
    const wanted = new Map<string, GatewayListener>();
    for (const l of listeners) if (tls.has(l.name)) wanted.set(l.name, l);
    for (const [name, g] of this.gateways) {
      const l = wanted.get(name);
      if (!l || l.port !== g.listener.port || (l.bind ?? '') !== (g.listener.bind ?? '') || Boolean(tls.get(name)) !== g.tlsOn) {
        g.server.close();
        g.server.closeIdleConnections();
        this.gateways.delete(name);
        delete this.ports.gateway[name];
      }
    }
    for (const [name, l] of wanted) {
      const creds = tls.get(name);
      const existing = this.gateways.get(name);
      if (existing) {
        existing.listener = l;
        const info = this.httpHandlers.get(existing.server);
        if (info) { info.routeConfig = l.routeConfig; info.httpsRedirect = l.httpsRedirect === true && !creds; }
        if (creds && 'setSecureContext' in existing.server) (existing.server as HttpsServer).setSecureContext(creds);
        continue;
      }
      const info: ListenerInfo = { kind: 'gateway', scheme: creds ? 'https' : 'http', port: l.port, routeConfig: l.routeConfig, httpsRedirect: l.httpsRedirect === true && !creds };
      const server = creds ? this.httpsServer(info, creds) : this.leanServer(info);
      const g: GatewayServer = { key: name, listener: l, server, port: undefined, bound: Promise.resolve(), tlsOn: Boolean(creds) };
      g.bound = listenOn(server instanceof LeanHttpServer ? server.net : server, l.port, l.bind ?? this.opts.bindAddress ?? '0.0.0.0').then(
        (port) => {
          g.port = port;
          info.port = l.port === 0 ? port : l.port;
          this.ports.gateway[name] = port;
        },
        (err: Error) => {
          const msg = `listener ${name} port ${l.port}: ${err.message}`;
          this.listenerErrors.push(msg);
          this.log.error({ listener: name, port: l.port, err: err.message }, 'gateway listener failed to bind');
          this.gateways.delete(name);
        },
      );
      this.gateways.set(name, g);
    }
  }

  async listening(): Promise<void> {
    await Promise.all([...this.gateways.values()].map((g) => g.bound));
  }

  // ------------------------------------------------------------------ requests

  private handle(req: ProxyRequest, res: ProxyResponse, l: ListenerInfo): void {
    const start = performance.now();
    this.inflight++;
    res.once('close', () => {
      this.inflight--;
      if (this.inflight === 0 && this.drainWaiters.length) for (const w of this.drainWaiters.splice(0)) w();
    });
    if (this.draining) res.shouldKeepAlive = false;
    const state = this.state;
    let url = req.url ?? '/';
    let authority = (req.headers.host as string | undefined) ?? '';
    let absolute = false;
    if (url.charCodeAt(0) !== 47 /* '/' */ && l.kind === 'outbound') {
      const parsed = parseAbsoluteForm(url);
      if (parsed) { authority = parsed.authority; url = parsed.path; absolute = true; }
    }
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const host = authority.toLowerCase();
    const headers = endToEndHeaders(req.headers);
    if (absolute) headers.host = authority;
    const requestId = ensureRequestId(headers as never);
    const remote = req.socket.remoteAddress;
    const xff = headers['x-forwarded-for'];
    if (remote) headers['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${remote}` : remote;
    if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = l.scheme;
    const traceId = this.observer.propagate(headers as never);
    const ctx: RequestCtx = { req, res, l, start, state, host, path, query, url, headers, requestId, traceId, method: req.method ?? 'GET', routeName: undefined };

    if (!state) return this.local(ctx, 'no_cluster', 'no snapshot applied yet', 503);
    if (l.kind === 'inbound') return this.handleInbound(ctx);
    if (l.httpsRedirect) {
      const bare = host.replace(/:\d+$/, '');
      return this.reply(ctx, 301, { location: `https://${bare}${url}` }, '', '-');
    }
    const rr: RouteRequest = { host, path, query, method: ctx.method, scheme: (headers['x-forwarded-proto'] as string) === 'https' ? 'https' : l.scheme, port: l.kind === 'gateway' ? l.port : hostPort(host, l.scheme), headers: req.headers };
    const table = state.tables.get(l.routeConfig);
    const decision = table ? matchRoute(table, rr) : undefined;
    if (!decision) {
      if (l.kind === 'outbound') {
        if (state.snapshot.mesh.outboundTrafficPolicy === 'ALLOW_ANY' && host) return this.passthroughRequest(ctx);
        return this.local(ctx, 'no_route', 'no route (outboundTrafficPolicy REGISTRY_ONLY)', 502);
      }
      return this.local(ctx, 'no_route');
    }
    const route = decision.route;
    ctx.routeName = route.name;
    let corsHeaders: Record<string, string> | undefined;
    if (route.cors) {
      const origin = req.headers.origin as string | undefined;
      const outcome = evaluateCors(route.cors, ctx.method, origin, req.headers['access-control-request-method'] as string | undefined);
      if (outcome.kind === 'preflight') return this.reply(ctx, 200, outcome.headers, '', '-');
      corsHeaders = outcome.responseHeaders;
    }
    if (route.action === 'directResponse') {
      const d = route.directResponse!;
      const h: Record<string, string | string[] | undefined> = { ...(corsHeaders ?? {}) };
      if (d.body !== undefined) h['content-type'] = 'text/plain';
      applyHeaderOps(h, route.responseHeaders);
      return this.reply(ctx, d.status, h, d.body ?? '', '-');
    }
    if (route.action === 'redirect') {
      const h: Record<string, string | string[] | undefined> = { location: redirectLocation(route, decision.match, rr) };
      applyHeaderOps(h, route.responseHeaders);
      return this.reply(ctx, route.redirect!.code || 301, h, '', '-');
    }
    const fault = route.fault;
    if (fault) {
      const delayed = fault.delay !== undefined && fault.delay.percent > 0 && this.random() * 100 < fault.delay.percent;
      const abort = (): void => {
        if (fault.abort && fault.abort.percent > 0 && this.random() * 100 < fault.abort.percent) {
          const status = fault.abort.httpStatus;
          this.reply(ctx, status, { 'content-type': 'text/plain', [RESPONSE_FLAGS_HEADER]: delayed ? 'DI,FI' : 'FI' }, PROXY_ERRORS.fault_injected.body, delayed ? 'DI,FI' : 'FI');
          req.resume();
          return;
        }
        this.forward(ctx, route, decision.match, corsHeaders, delayed ? 'DI' : undefined);
      };
      if (delayed) {
        const timer = setTimeout(abort, fault.delay!.fixedDelayMs);
        res.once('close', () => clearTimeout(timer));
        return;
      }
      return abort();
    }
    this.forward(ctx, route, decision.match, corsHeaders, undefined);
  }

  private forward(ctx: RequestCtx, route: CompiledRoute, match: Parameters<typeof rewritePath>[1], corsHeaders: Record<string, string> | undefined, extraFlag: string | undefined): void {
    if (ctx.res.destroyed) return;
    const state = ctx.state!;
    const dest = pickDestination(route, this.random);
    const cluster = state.clusters.get(dest.cluster);
    if (!cluster) {
      if (dest.cluster === 'PassthroughCluster') return this.passthroughRequest(ctx);
      if (dest.cluster === 'BlackHoleCluster') return this.local(ctx, 'no_route', 'no route (BlackHoleCluster)', 502);
      return this.local(ctx, 'no_cluster');
    }
    const headers = ctx.headers;
    applyHeaderOps(headers, dest.requestHeaders);
    applyHeaderOps(headers, route.requestHeaders);
    if (route.rewrite?.authority !== undefined) headers.host = route.rewrite.authority;
    const rewritten = rewritePath(route, match, ctx.path, ctx.query);
    const path = rewritten ?? ctx.url;
    const rt = route.runtime as RouteRuntime;
    let hash: number | undefined;
    let setCookie: string | undefined;
    if (cluster.hashKey) {
      hash = cluster.hashFor({ headers: ctx.req.headers, remoteAddress: ctx.req.socket.remoteAddress, query: ctx.query });
      if (hash === undefined && cluster.cookie?.ttlMs) {
        // Envoy generates the affinity cookie when it is absent and a TTL is configured.
        const value = Math.floor(this.random() * 2 ** 48).toString(16);
        const c = cluster.cookie;
        setCookie = `${c.name}=${value}; Max-Age=${Math.ceil(c.ttlMs! / 1000)}${c.path ? `; Path=${c.path}` : ''}; HttpOnly`;
        hash = cluster.hashFor({ headers: { cookie: `${c.name}=${value}` }, remoteAddress: undefined, query: '' });
      }
    }
    const bodyMode = this.bodyMode(ctx.req, ctx.method, rt.bufferBody);
    const ex = new Exchange({
      req: ctx.req,
      res: ctx.res,
      route,
      destination: dest,
      cluster,
      retry: rt.retry,
      method: ctx.method,
      path,
      headers,
      extraResponseHeaders: corsHeaders,
      hash,
      random: this.random,
      setCookie,
      onDone: (o) => this.done(ctx, o, extraFlag),
    });
    ex.start(bodyMode);
    if (route.mirrors.length) {
      const fire = (): void => {
        const body = ex.replayBody;
        if (body === undefined) return;
        for (const m of route.mirrors) {
          if (m.percent < 100 && this.random() * 100 >= m.percent) continue;
          const mc = state.clusters.get(m.cluster);
          if (mc) sendMirror(mc, ctx.method, path, { ...headers }, body, this.random);
        }
      };
      if (bodyMode === 'none') fire();
      else ctx.req.once('end', () => setImmediate(fire));
    }
  }

  private bodyMode(req: ProxyRequest, method: string, buffer: boolean): 'none' | 'buffer' | 'stream' {
    const cl = req.headers['content-length'];
    const te = req.headers['transfer-encoding'];
    if (te === undefined && (cl === undefined || cl === '0')) return 'none';
    if (NO_BODY.has(method) && te === undefined && cl === '0') return 'none';
    if (!buffer) return 'stream';
    if (cl !== undefined && Number(cl) > REPLAY_BUFFER_LIMIT) return 'stream';
    return 'buffer';
  }

  private passthroughRequest(ctx: RequestCtx): void {
    const authority = ctx.host;
    let cluster = this.passthrough.get(authority);
    if (!cluster) {
      const { address, port } = splitHostPort(authority, 80);
      const def: UpstreamCluster = { name: 'PassthroughCluster', service: address, port, lb: { simple: 'LEAST_REQUEST' }, connectionPool: DEFAULT_POOL_FOR_LOCAL };
      cluster = new ClusterRuntime(def, 'passthrough', { connections: null, connectTimeoutMs: this.state!.snapshot.mesh.connectTimeoutMs || 10_000, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000, scheme: 'http' });
      cluster.setEndpoints([{ address, port, labels: {}, tlsMode: 'disabled', weight: 1 }]);
      if (this.passthrough.size >= 256) {
        const [oldKey, old] = this.passthrough.entries().next().value as [string, ClusterRuntime];
        old.retire();
        this.passthrough.delete(oldKey);
      }
      this.passthrough.set(authority, cluster);
    }
    ctx.routeName = 'allow_any';
    const ex = new Exchange({
      req: ctx.req, res: ctx.res, route: undefined, destination: undefined, cluster, retry: undefined,
      method: ctx.method, path: ctx.url, headers: ctx.headers, hash: undefined, random: this.random,
      onDone: (o) => this.done(ctx, o, undefined),
    });
    ex.start(this.bodyMode(ctx.req, ctx.method, false));
  }

  private handleInbound(ctx: RequestCtx): void {
    const cluster = this.inboundCluster;
    if (!cluster) return this.local(ctx, 'no_cluster', 'no application port configured', 503);
    const go = (): void => {
      const ex = new Exchange({
        req: ctx.req, res: ctx.res, route: undefined, destination: undefined, cluster, retry: undefined,
        method: ctx.method, path: ctx.url, headers: ctx.headers, hash: undefined, random: this.random,
        onDone: (o) => this.done(ctx, o, undefined),
      });
      ex.start(this.bodyMode(ctx.req, ctx.method, false));
    };
    const filter = this.opts.inboundFilter;
    if (!filter) return go();
    // The filter reads url, method, headers and socket, which both request kinds have.
    filter(ctx.req as IncomingMessage, this.inboundContext(ctx.req, ctx.state!.snapshot, ctx.l)).then(
      (denial) => {
        if (!denial) return go();
        ctx.req.resume();
        this.reply(ctx, denial.status, { 'content-type': 'text/plain', ...(denial.headers ?? {}) }, denial.body, 'UAEX');
      },
      (err: Error) => {
        this.log.error({ err: err.message }, 'inbound filter failed');
        ctx.req.resume();
        this.reply(ctx, 500, { 'content-type': 'text/plain' }, 'inbound filter error', 'UAEX');
      },
    );
  }

  private inboundContext(req: ProxyRequest, snapshot: ProxySnapshot, l: ListenerInfo): InboundContext {
    const socket = req.socket;
    const isTls = socket instanceof TLSSocket;
    const peer = isTls ? (socket as TLSSocket).getPeerCertificate() : undefined;
    return {
      snapshot,
      port: l.port,
      remoteAddress: socket.remoteAddress,
      tls: isTls,
      peerCertificate: peer && peer.raw ? { raw: peer.raw, subjectaltname: peer.subjectaltname } : undefined,
    };
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, l: ListenerInfo): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    routeUpgrade(this.upgradeEnv, req, socket, head, l);
  }

  /** What upgrade routing reads from the proxy (live getters: the state swaps on apply). */
  private readonly upgradeEnv: UpgradeEnv = {
    state: () => this.state,
    inboundCluster: () => this.inboundCluster,
    inboundFilter: () => this.opts.inboundFilter,
    random: () => this.random(),
    inboundContext: (req, snapshot, l) => this.inboundContext(req, snapshot, l),
  };

  // ------------------------------------------------------------------ replies and accounting

  private local(ctx: RequestCtx, code: ProxyErrorCode, body?: string, status?: number): void {
    const info = PROXY_ERRORS[code];
    ctx.req.resume();
    this.reply(ctx, status ?? info.status, { 'content-type': 'text/plain', [RESPONSE_FLAGS_HEADER]: info.flag }, body ?? info.body, info.flag);
  }

  private reply(ctx: RequestCtx, status: number, headers: Record<string, string | string[] | undefined>, body: string, flags: string): void {
    const res = ctx.res;
    if (res.headersSent || res.destroyed) return;
    const len = Buffer.byteLength(body);
    headers['content-length'] = String(len);
    for (const k in headers) if (headers[k] === undefined) delete headers[k];
    res.writeHead(status, headers as Record<string, string>);
    res.end(body);
    if (!ctx.req.complete) ctx.req.resume();
    this.done(ctx, { status, flags, host: undefined, cluster: undefined, requestBytes: 0, responseBytes: len, attempts: 0 }, undefined);
  }

  private done(ctx: RequestCtx, o: ExchangeOutcome, extraFlag: string | undefined): void {
    const flags = extraFlag ? (o.flags === '-' ? extraFlag : `${extraFlag},${o.flags}`) : o.flags;
    const obs = this.observer;
    const durationMs = performance.now() - ctx.start;
    // Counted even with metrics off: rollout analysis reads the per-mesh-version counters (the
    // observe fast path allocates nothing); only /stats/prometheus honours telemetry.metrics.
    const series =
      ctx.l.kind === 'inbound'
        ? ctx.l.scheme === 'https'
          ? obs.inboundSeries('mutual_tls', connectionPrincipals(ctx.req.socket))
          : obs.inboundSeries('none')
        : obs.sourceSeries(o.cluster?.def, o.host);
    series?.observe(o.status, flags, durationMs, o.requestBytes, o.responseBytes);
    if (obs.accessLog.enabled) {
      const h = ctx.req.headers;
      obs.accessLog.log({
        start_time: new Date(Date.now() - durationMs).toISOString(),
        method: ctx.method,
        path: ctx.url,
        protocol: `HTTP/${ctx.req.httpVersion}`,
        response_code: o.status,
        response_flags: flags,
        bytes_received: o.requestBytes,
        bytes_sent: o.responseBytes,
        duration: Math.round(durationMs),
        upstream_host: o.host ? o.host.key : null,
        upstream_cluster: o.cluster ? o.cluster.name : null,
        x_forwarded_for: (h['x-forwarded-for'] as string | undefined) ?? null,
        user_agent: (h['user-agent'] as string | undefined) ?? null,
        request_id: ctx.requestId,
        authority: ctx.host || null,
        route_name: ctx.routeName ?? null,
        trace_id: ctx.traceId ?? null,
      });
    }
  }

  // ------------------------------------------------------------------ admin views

  status(): ProxyStatus {
    return {
      version: PROXY_VERSION,
      mode: this.opts.mode,
      snapshotVersion: this.state?.snapshot.version,
      meshVersion: this.state?.snapshot.meshVersion,
      snapshotSource: this.snapshotSource,
      appliedAt: this.appliedAt,
      uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
      lastRejected: this.lastRejected,
      draining: this.draining,
      inflight: this.inflight,
      listenerErrors: [...this.listenerErrors, ...this.skippedListeners],
    };
  }

  clusters(): ClusterView[] {
    const all = [...(this.state?.clusters.values() ?? [])];
    if (this.inboundCluster) all.push(this.inboundCluster);
    return all.map((c) => ({
      name: c.name,
      service: c.def.service,
      activeRequests: c.active,
      endpoints: c.hosts.map((h) => ({
        address: h.endpoint.address,
        port: h.endpoint.port,
        healthy: !h.outlier.ejected,
        ejected: h.outlier.ejected,
        ejections: h.outlier.ejections,
        activeRequests: h.active,
        totalRequests: h.total,
        labels: h.endpoint.labels,
      })),
    }));
  }

  renderPrometheus(): string {
    return this.observer.renderPrometheus();
  }

  versionStats(): VersionStats[] {
    return this.observer.metrics?.versionStats() ?? [];
  }

  // ------------------------------------------------------------------ shutdown

  async close(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const drainMs = opts.drainMs ?? 5000;
    const traffic = this.servers.filter((s) => !(s as { isAdmin?: boolean }).isAdmin);
    for (const s of [...traffic, ...[...this.gateways.values()].map((g) => g.server)]) {
      s.close();
      if ('closeIdleConnections' in s) (s as Server).closeIdleConnections();
    }
    for (const lean of this.leanServers) {
      lean.close();
      lean.closeIdleConnections();
    }
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.drainWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    for (const s of this.servers) {
      s.close();
      if ('closeAllConnections' in s) (s as Server).closeAllConnections();
    }
    for (const lean of this.leanServers) lean.closeAllConnections();
    for (const sock of this.sockets) sock.destroy();
    for (const g of this.gateways.values()) g.server.closeAllConnections();
    this.observer.accessLog.flush();
    await Promise.all([
      this.clusterManager.destroy(),
      this.inboundCluster?.destroy(),
      ...[...this.passthrough.values()].map((c) => c.destroy()),
    ]);
  }
}

interface RequestCtx {
  req: ProxyRequest;
  res: ProxyResponse;
  l: ListenerInfo;
  start: number;
  state: ProxyState | undefined;
  host: string;
  path: string;
  query: string;
  /** Original request target in origin form (path + query). */
  url: string;
  headers: HeaderMap;
  requestId: string;
  traceId: string | undefined;
  method: string;
  routeName: string | undefined;
}

function attachRouteRuntime(table: RouteTable): void {
  const vhosts = new Set([...table.exact.values(), ...table.suffixes.map((s) => s.vhost), ...table.prefixes.map((p) => p.vhost), ...(table.any ? [table.any] : [])]);
  for (const vh of vhosts) {
    for (const r of vh.routes) {
      // With a fault, Istio sets up no timeout or retry policy; the renderer resolves that, the proxy enforces it too.
      const retry = r.retry.attempts > 0 && !r.fault ? compileRetry(r.retry) : undefined;
      const rt: RouteRuntime = { retry, bufferBody: retry !== undefined || r.mirrors.length > 0 };
      r.runtime = rt;
    }
  }
}

/**
 * Starts a proxy: binds its listeners, applies the persisted snapshot from `stateDir` (so it serves
 * before any control plane answers), then `initialSnapshot` when given.
 */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const proxy = new TrellisProxy(options);
  if (options.stateDir) {
    const persisted = loadPersistedSnapshot(options.stateDir);
    if (persisted.found) {
      const r = proxy.applySnapshot(persisted.value, 'state-dir');
      if (!r.ok) options.logger?.warn({ stateDir: options.stateDir, error: r.error }, 'persisted snapshot refused');
    } else if (persisted.error) options.logger?.warn({ stateDir: options.stateDir, error: persisted.error }, 'persisted snapshot unreadable');
  }
  if (options.initialSnapshot !== undefined) proxy.applySnapshot(options.initialSnapshot, 'initial');
  await proxy.listen();
  await proxy.listening();
  return proxy;
}
