import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { MAX_RECONNECT_BACKOFF_MS, createDiscoveryServer, spiffeAuthenticator, type DiscoveryServer, type ProxyStatus, type ServerTlsOptions } from '../discovery/index.js';
import type { ClusterStatusStatus } from '../mesh/api/index.js';
import type { ProxyIdentity, ProxySnapshot } from '../mesh/snapshot.js';
import { buildClusterIndex, buildProxySnapshotFromIndex, type ClusterIndex } from '../render/snapshot/index.js';
import type { ClusterRender, RepositoryRender, WorkloadEndpoint } from '../render/types.js';
import { MeshCaService, type CertificateAuthority, type JoinTokenStore } from '../security/index.js';
import { errorMessage } from './errors.js';
import { Operator, type OperatorOptions } from './operator.js';
import type { AppliedRevision } from './reconciler.js';
import {
  BranchPublisher,
  RolloutController,
  RolloutStateStore,
  applyRolloutActions,
  StatusBranchReader,
  buildClusterView,
  groupByStage,
  type ClusterRolloutState,
  type ClusterTransition,
  type DesiredFleet,
  type RolloutStatusView,
  type StatsByVersion,
} from './rollout/index.js';
import { VersionRenders } from './version-renders.js';

export interface ControlPlaneOptions extends Omit<OperatorOptions, 'appliedIsCurrent'> {
  /** Clusters this instance manages (one operator per cluster, or one for all); default every Fleet cluster. */
  clusters?: string[];
  discovery?: { host?: string; port?: number; tls?: ServerTlsOptions; debounceMs?: number; staleAfterMs?: number; endpointGraceMs?: number; restartHoldMs?: number };
  /** How often the rollout engine looks at the fleet (default 500 ms). */
  rolloutTickMs?: number;
  /** Versions verified by clusters this instance does not manage (from the status branch); see StatusBranchReader. */
  verifiedElsewhere?: (cluster: string) => readonly string[];
  /**
   * The mesh CA and join-token bootstrap, on by default: root CA in `<caDir>/ca/` (default caDir:
   * stateDir), join tokens in `<stateDir>/tokens/`, `POST /v1/bootstrap` over TLS on its own port
   * (`bootstrapPort`, default any) beside discovery; the operator API's `/v1/bootstrap` only points
   * there. `discoveryMtls`: discovery serves mTLS with a certificate from the mesh CA and accepts a
   * proxy only with a workload certificate whose SPIFFE id matches its hello (ignored when
   * `discovery.tls` is given). `false` turns it all off.
   */
  security?: false | { trustDomain?: string; caDir?: string; bootstrapPort?: number; discoveryMtls?: boolean; serverNames?: string[] };
  /** Called after every rollout transition was persisted and published (promotion, revert, tests). */
  onTransition?: (t: ClusterTransition, desired: DesiredFleet) => void | Promise<void>;
}

/**
 * Trellis's istiod plus its GitOps loop: the Operator (git source, validation, status writers)
 * feeds every valid commit to the rollout controller and the discovery server; the discovery
 * server renders each proxy's snapshot at the mesh version the rollout assigns it.
 */
export class ControlPlane {
  readonly operator: Operator;
  readonly discovery: DiscoveryServer;
  readonly rollout: RolloutController;
  readonly logger: Logger;
  private readonly renders: VersionRenders;
  /** Per `cluster@version`, kept across commits: a new commit's index is built on the last one (incremental). */
  private readonly indexes = new Map<string, { cluster: ClusterRender; endpoints: WorkloadEndpoint[]; index: ClusterIndex }>();
  /** Cluster indexes built from scratch and built on a previous one (tests, profiling). */
  readonly indexBuilds = { full: 0, incremental: 0 };
  /** Connected proxies per cluster, read from discovery once per rollout tick (see proxiesOf). */
  private statusView?: Map<string, ProxyStatus[]>;
  private cacheStatusView = false;
  private readonly endpointsByCluster = new WeakMap<WorkloadEndpoint[], Map<string, WorkloadEndpoint[]>>();
  private desired?: DesiredFleet;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private discoveryAddress?: { url: string; port: number };
  /** Proxies that connect before the first valid commit wait for it instead of failing to render. */
  private firstApply!: Promise<void>;
  private markApplied!: () => void;
  private readonly publisher?: BranchPublisher;
  private readonly statusReader?: StatusBranchReader;
  private lastStatusRead = 0;
  private meshCa?: MeshCaService;
  /** Filled from the mesh CA in start(), before discovery listens (the discovery server reads it then). */
  private readonly meshDiscoveryTls?: ServerTlsOptions;
  private readonly announcedTokens = new Set<string>();

  constructor(private readonly opts: ControlPlaneOptions) {
    this.firstApply = new Promise((resolve) => (this.markApplied = resolve));
    this.operator = new Operator({ ...opts, appliedIsCurrent: false, httpExtra: (req, res) => this.handleHttp(req, res) });
    this.logger = this.operator.logger;
    this.renders = new VersionRenders(this.operator.reconciler.renderCache);
    const security = opts.security;
    if (security && security.discoveryMtls && !opts.discovery?.tls) this.meshDiscoveryTls = { key: '', cert: '' };
    this.discovery = createDiscoveryServer({
      render: (proxy, endpoints) => this.renderProxy(proxy, endpoints),
      tls: opts.discovery?.tls ?? this.meshDiscoveryTls,
      // The mesh CA binds every certificate to its join token's cluster: an unbound one is refused.
      ...(this.meshDiscoveryTls ? { authenticate: spiffeAuthenticator((security && security.trustDomain) || 'cluster.local', { requireClusterBinding: true }) } : {}),
      debounceMs: opts.discovery?.debounceMs,
      staleAfterMs: opts.discovery?.staleAfterMs,
      endpointGraceMs: opts.discovery?.endpointGraceMs,
      // A restarted operator starts from the endpoint registry it had, so its first pushes hold
      // the endpoints of proxies not back yet (REGISTRY_ONLY meshes would fail calls to them).
      endpointStateFile: join(opts.stateDir, 'discovery', 'endpoints.json'),
      // Only without that file (first start, lost or damaged state dir): proxies that outlived a
      // restart keep their snapshots while the registry refills, longer than their longest backoff.
      restartHoldMs: opts.discovery?.restartHoldMs ?? MAX_RECONNECT_BACKOFF_MS + 3_000,
      registry: this.operator.metrics.registry,
      logger: this.logger,
    });
    this.discovery.events.on('event', (e) => {
      if (e.type === 'connected' || e.type === 'disconnected') this.statusView = undefined;
    });
    const ref = opts.ref ?? { branch: 'main' };
    if ('branch' in ref) {
      this.publisher = new BranchPublisher({ repo: opts.repo, cacheDir: join(opts.stateDir, 'publish'), auth: opts.auth, timeoutMs: opts.timeoutMs });
    }
    if (this.publisher && opts.statusBranch !== false) {
      this.statusReader = new StatusBranchReader({ publisher: this.publisher, branch: opts.statusBranch ?? 'trellis-status' });
    }
    const reader = this.statusReader;
    this.rollout = new RolloutController({
      store: new RolloutStateStore(join(opts.stateDir, 'rollout')),
      clusters: () => this.managedClusters(),
      observe: { proxiesOf: (c) => this.proxiesOf(c).map((p) => p.id), statsOf: (c) => this.statsOf(c) },
      verifiedElsewhere: opts.verifiedElsewhere ?? (reader ? (c) => reader.verifiedVersions(c) : () => []),
    });
    this.operator.onApply((render, revision) => this.apply(render, revision));
  }

  get discoveryUrl(): string {
    if (!this.discoveryAddress) throw new Error('control plane not started');
    return this.discoveryAddress.url;
  }

  /** The mesh CA (after start, unless security is off). */
  get certificateAuthority(): CertificateAuthority | undefined {
    return this.meshCa?.ca;
  }

  /** Per-cluster join tokens (after start, unless security is off). */
  get joinTokenStore(): JoinTokenStore | undefined {
    return this.meshCa?.tokens;
  }

  /** The TLS bootstrap endpoint (after start, unless security is off). */
  get bootstrapUrl(): string | undefined {
    return this.meshCa?.bootstrapUrl;
  }

  async start(): Promise<void> {
    await this.openSecurity();
    await this.rollout.load();
    this.discoveryAddress = await this.discovery.listen(this.opts.discovery?.port ?? 0, this.opts.discovery?.host ?? '127.0.0.1');
    await this.operator.start();
    const every = this.opts.rolloutTickMs ?? 500;
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
    this.logger.info({ discovery: this.discoveryAddress.url, api: this.operator.url, bootstrap: this.meshCa?.bootstrapUrl }, 'control plane started');
  }

  private async openSecurity(): Promise<void> {
    const security = this.opts.security;
    if (security === false) return;
    this.meshCa = await MeshCaService.start({
      trustDomain: security?.trustDomain ?? 'cluster.local',
      caDir: security?.caDir ?? this.opts.stateDir,
      tokenDir: join(this.opts.stateDir, 'tokens'),
      host: this.opts.discovery?.host ?? '127.0.0.1',
      bootstrapPort: security?.bootstrapPort,
      serverNames: security?.serverNames,
      logger: this.logger,
    });
    if (this.meshDiscoveryTls) Object.assign(this.meshDiscoveryTls, this.meshCa.discoveryServerTls());
  }

  /** Creates each managed cluster's join token on first sight and logs where its file is (never the token). */
  private async announceJoinTokens(render: RepositoryRender): Promise<void> {
    if (!this.meshCa) return;
    const trustDomain = this.meshCa.ca.trustDomain;
    for (const cluster of this.managedClusters()) {
      if (this.announcedTokens.has(cluster)) continue;
      try {
        const tokenFile = await this.meshCa.tokens.tokenPath(cluster);
        this.announcedTokens.add(cluster);
        this.logger.info({ cluster, tokenFile, bootstrapPath: '/v1/bootstrap' }, 'join token file');
      } catch (err) {
        this.logger.error({ cluster, err: errorMessage(err) }, 'join token unavailable');
      }
      const meshDomain = render.clusters.find((c) => c.cluster === cluster)?.meshConfig.trustDomain;
      if (meshDomain && meshDomain !== trustDomain) {
        this.logger.warn({ cluster, meshTrustDomain: meshDomain, caTrustDomain: trustDomain }, 'the cluster meshConfig trustDomain differs from the CA trust domain; certificates carry the CA one');
      }
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    await this.operator.stop();
    await this.discovery.close();
    await this.meshCa?.close();
  }

  managedClusters(): string[] {
    const all = this.desired?.fleet.clusters.map((c) => c.name) ?? [];
    return this.opts.clusters ? all.filter((c) => this.opts.clusters!.includes(c)) : all;
  }

  /**
   * A newly applied (valid) commit. With the Fleet suspended, everything pauses: the rollout holds
   * (phase Paused) and proxies keep the configuration of the commit in force before the suspension;
   * the commit that lifts it is rendered and pushed as usual.
   */
  private async apply(render: RepositoryRender, revision: AppliedRevision): Promise<void> {
    const frozen = render.fleet.spec.suspend === true && this.renders.commitInForce !== undefined;
    if (frozen) {
      this.logger.info({ commit: revision.commit, serving: this.renders.commitInForce }, 'fleet suspended: commit recorded, proxies keep the configuration in force');
    } else {
      this.renders.setCommit(revision.commit, revision.snapshotDir, render);
    }
    this.desired = {
      fleet: render.fleet.spec,
      annotations: render.fleet.metadata.annotations ?? {},
      versions: Object.fromEntries(render.clusters.map((c) => [c.cluster, c.version])),
      commit: revision.commit,
    };
    await this.rollout.setDesired(this.desired);
    this.pruneIndexes();
    await this.announceJoinTokens(render);
    this.markApplied();
    await this.tick();
    if (!frozen) this.discovery.configChanged(`commit ${revision.commit.slice(0, 12)}`);
  }

  /** One rollout step for every managed cluster; publishes status and re-pushes proxies whose version moved. */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.runTick()
      .catch((err: unknown) => this.logger.error({ err: errorMessage(err) }, 'rollout tick failed'))
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    this.statusView = undefined;
    this.cacheStatusView = true;
    try {
      await this.runTickSteps();
    } finally {
      this.cacheStatusView = false;
      this.statusView = undefined;
    }
  }

  private async runTickSteps(): Promise<void> {
    const desired = this.desired;
    if (!desired) return;
    await this.refreshOtherClusters();
    const transitions = await this.rollout.tick(Date.now());
    for (const t of transitions) {
      this.logger.info({ cluster: t.cluster, phase: t.state.phase, events: t.events.map((e) => e.type), message: t.state.message }, 'rollout transition');
      if (t.assignmentChanged) this.discovery.configChanged(`rollout ${t.cluster}: ${t.state.message}`);
    }
    this.publishStatus();
    for (const t of transitions) {
      await this.gitActions(t, desired);
      await this.opts.onTransition?.(t, desired);
    }
  }

  /** Promotion branches and revert commits; a failure is logged and retried by nobody: git stays the human's to fix. */
  private async gitActions(t: ClusterTransition, desired: DesiredFleet): Promise<void> {
    const policy = this.rollout.resolvedPolicy;
    const ref = this.opts.ref ?? { branch: 'main' };
    if (!this.publisher || !policy || !('branch' in ref)) return;
    try {
      await applyRolloutActions({
        transition: t,
        desired,
        policy,
        states: this.rollout.states,
        verified: (c) => this.rollout.verified(c),
        publisher: this.publisher,
        trackedBranch: ref.branch,
        logger: this.logger,
      });
    } catch (err) {
      this.logger.error({ cluster: t.cluster, err: errorMessage(err) }, 'rollout git action failed');
    }
  }

  /**
   * When this instance does not manage every cluster and one of its clusters waits on the stage
   * gate, re-read the status branch (at most once a second) for the other operators' verifications.
   */
  private async refreshOtherClusters(): Promise<void> {
    const desired = this.desired;
    if (!this.statusReader || !desired || !this.opts.clusters) return;
    const waiting = this.managedClusters().some((c) => this.rollout.states[c]?.phase === 'Waiting' || desired.versions[c] !== this.rollout.states[c]?.stableVersion);
    if (!waiting || Date.now() - this.lastStatusRead < 1000) return;
    this.lastStatusRead = Date.now();
    await this.statusReader.refresh();
    if (this.statusReader.error) this.logger.warn({ err: this.statusReader.error }, 'reading the status branch failed; the stage gate stays closed');
  }

  /** Writes each managed cluster's rollout and proxy state into the status store (unchanged ones are dropped there). */
  private publishStatus(): void {
    const desired = this.desired;
    const policy = this.rollout.resolvedPolicy;
    if (!desired || !policy) return;
    const states = this.rollout.states;
    this.operator.status.updateMany(
      this.managedClusters().filter((c) => states[c]),
      (s, cluster) => statusFromRollout(s, states[cluster], desired.versions[cluster], policy.canarySteps, this.proxiesOf(cluster)),
    );
  }

  /**
   * Connected proxies of a cluster. Within a rollout tick the discovery status (every proxy, mapped
   * and sorted) is read once for all clusters, not once per cluster and step; a proxy connecting or
   * leaving meanwhile makes the next call read it again.
   */
  private proxiesOf(cluster: string): ProxyStatus[] {
    let view = this.statusView;
    if (!view) {
      view = connectedByCluster(this.discovery.status());
      if (this.cacheStatusView) this.statusView = view;
    }
    return view.get(cluster) ?? [];
  }

  /** Drops the indexes of versions no managed cluster runs or moves to any more (they are kept across commits otherwise). */
  private pruneIndexes(): void {
    const live = new Set<string>();
    for (const cluster of this.managedClusters()) {
      const state = this.rollout.states[cluster];
      for (const version of [this.desired?.versions[cluster], state?.stableVersion, state?.targetVersion]) if (version) live.add(`${cluster}@${version}`);
    }
    for (const key of this.indexes.keys()) if (!live.has(key)) this.indexes.delete(key);
  }

  private statsOf(cluster: string): StatsByVersion {
    const out: StatsByVersion = {};
    for (const s of this.discovery.versionStats(cluster)) out[s.meshVersion] = s;
    return out;
  }

  /** Endpoints are registered fleet-wide; a proxy sees its own cluster's (and static ones without a proxy). */
  private clusterEndpoints(all: WorkloadEndpoint[], cluster: string): WorkloadEndpoint[] {
    let byCluster = this.endpointsByCluster.get(all);
    if (!byCluster) {
      byCluster = new Map();
      this.endpointsByCluster.set(all, byCluster);
    }
    let list = byCluster.get(cluster);
    if (!list) {
      list = all.filter((e) => !e.proxyId || e.proxyId.startsWith(`${cluster}/`));
      byCluster.set(cluster, list);
    }
    return list;
  }

  private async renderProxy(proxy: ProxyIdentity, endpoints: WorkloadEndpoint[]): Promise<ProxySnapshot> {
    await this.firstApply;
    const version = this.rollout.versionFor(proxy.cluster, proxy.id);
    if (!version) throw new Error(`cluster ${proxy.cluster} is not in the Fleet at the commit in force`);
    const cluster = await this.renders.get(proxy.cluster, version);
    const scoped = this.clusterEndpoints(endpoints, proxy.cluster);
    const key = `${proxy.cluster}@${version}`;
    let entry = this.indexes.get(key);
    if (!entry || entry.cluster !== cluster || entry.endpoints !== scoped) {
      if (entry) this.indexBuilds.incremental++;
      else this.indexBuilds.full++;
      entry = { cluster, endpoints: scoped, index: buildClusterIndex(cluster, scoped, entry?.index) };
      this.indexes.set(key, entry);
    }
    return buildProxySnapshotFromIndex(entry.index, proxy);
  }

  rolloutStatus(): RolloutStatusView {
    const desired = this.desired;
    const policy = this.rollout.resolvedPolicy;
    const views = [];
    if (desired && policy) {
      const all = this.discovery.status();
      const connected = connectedByCluster(all);
      for (const cluster of this.managedClusters()) {
        const state = this.rollout.states[cluster];
        if (!state) continue;
        views.push(buildClusterView(state, policy, desired.versions[cluster], proxyCounts(connected.get(cluster) ?? [], state, all)));
      }
    }
    return {
      commit: desired?.commit,
      generatedAt: new Date().toISOString(),
      suspended: desired?.fleet.suspend === true,
      stages: desired ? groupByStage(desired.fleet, views) : [],
    };
  }

  private handleHttp(req: IncomingMessage, res: ServerResponse): boolean {
    const path = new URL(req.url ?? '/', 'http://operator.invalid').pathname;
    if (path === '/v1/bootstrap') {
      if (!this.meshCa) res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'NOT_FOUND', message: 'the mesh CA is off' }));
      else this.meshCa.handlePlainHttp(req, res);
      return true;
    }
    if (path === '/v1/rollout' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.rolloutStatus(), null, 2) + '\n');
      return true;
    }
    return this.discovery.handleDebug(req, res);
  }
}

function connectedByCluster(all: readonly ProxyStatus[]): Map<string, ProxyStatus[]> {
  const out = new Map<string, ProxyStatus[]>();
  for (const p of all) {
    if (!p.connected) continue;
    const list = out.get(p.cluster);
    if (list) list.push(p);
    else out.set(p.cluster, [p]);
  }
  return out;
}

function proxyCounts(connected: ProxyStatus[], state: ClusterRolloutState, all: ProxyStatus[]): { total: number; onTarget: number; drifted: number; disconnected: number } {
  const cluster = state.cluster;
  const target = state.targetVersion ?? state.stableVersion;
  const mine = all.filter((p) => p.cluster === cluster);
  return {
    total: connected.length,
    onTarget: connected.filter((p) => p.meshVersion === target).length,
    drifted: mine.filter((p) => p.connected && p.sync !== 'SYNCED').length,
    disconnected: mine.filter((p) => !p.connected).length,
  };
}

/** The rollout's view of a cluster merged into its ClusterStatus (the reconciler owns commit, errors and conditions). */
export function statusFromRollout(
  s: ClusterStatusStatus,
  state: ClusterRolloutState,
  desiredVersion: string | undefined,
  steps: number[],
  connected: ProxyStatus[],
): ClusterStatusStatus {
  if (s.phase === 'InvalidConfig') return s;
  const target = state.targetVersion;
  const onDesired = connected.filter((p) => p.meshVersion === (desiredVersion ?? state.stableVersion)).length;
  const drift = connected.filter((p) => p.sync !== 'SYNCED').map((p) => ({ proxy: p.id, state: p.sync, detail: p.lastNack?.reason ?? p.renderError ?? undefined }));
  const a = state.lastAnalysis;
  return {
    ...s,
    desiredVersion: desiredVersion ?? s.desiredVersion,
    currentVersion: state.stableVersion,
    phase: state.phase,
    canary: target ? { step: state.stepIndex + 1, weight: steps[state.stepIndex], version: target } : undefined,
    lastAnalysis: a ? { successRate: a.successRate, p99LatencyMs: a.p99LatencyMs, requests: a.requests, passed: a.verdict === 'inconclusive' ? undefined : a.verdict === 'pass' } : s.lastAnalysis,
    proxies: { total: connected.length, onDesired, drifted: drift.length, disconnected: 0 },
    drift: drift.length > 0 ? drift : undefined,
    verifiedVersions: state.verifiedVersions,
    failedVersions: state.failedVersions.length > 0 ? state.failedVersions : undefined,
  };
}
