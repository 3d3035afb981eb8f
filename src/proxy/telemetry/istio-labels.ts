/**
 * Resolution of Istio's standard metric labels (istio/proxy `istio_stats.cc`, `all_tags_`) for one
 * series: done once per distinct series, never per request.
 */
import type { ProxyIdentity } from '../../mesh/snapshot.js';

export type Reporter = 'source' | 'destination';
export type RequestProtocol = 'http' | 'grpc';
export type ConnectionSecurityPolicy = 'mutual_tls' | 'none' | 'unknown';

/**
 * The labels of a request that do not depend on its outcome: everything a caller can resolve once
 * per (route, destination) and reuse. Absent peer fields become "unknown", as in Istio; the local
 * side (source for `reporter: 'source'`, destination for `reporter: 'destination'`) defaults to the
 * proxy's own identity.
 */
export interface SeriesLabels {
  reporter: Reporter;
  /** FQDN, e.g. `reviews.default.svc.cluster.local`. */
  destinationService: string;
  destinationWorkload?: string;
  destinationNamespace?: string;
  destinationVersion?: string;
  destinationApp?: string;
  destinationPrincipal?: string;
  sourcePrincipal?: string;
  sourceWorkload?: string;
  sourceNamespace?: string;
  sourceVersion?: string;
  sourceApp?: string;
  requestProtocol: RequestProtocol;
  connectionSecurityPolicy: ConnectionSecurityPolicy;
  // Rarely needed: derived from the fields above or the proxy identity when absent.
  sourceCluster?: string;
  destinationCluster?: string;
  sourceCanonicalService?: string;
  sourceCanonicalRevision?: string;
  destinationCanonicalService?: string;
  destinationCanonicalRevision?: string;
  /** Defaults to the first DNS label of a `<name>.<ns>.svc.<domain>` FQDN, else the FQDN itself. */
  destinationServiceName?: string;
  /** Defaults to the second DNS label of a `<name>.<ns>.svc.<domain>` FQDN, else the destination namespace. */
  destinationServiceNamespace?: string;
}

export const UNKNOWN = 'unknown';

/** Istio's label order for the static part of a series (everything before `response_flags`). */
export const STATIC_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
] as const;

interface Peer {
  workload: string;
  namespace: string;
  principal: string;
  app: string;
  version: string;
  canonicalService: string;
  canonicalRevision: string;
  cluster: string;
}

const SVC_FQDN = /^([^.]+)\.([^.]+)\.svc(\.|$)/;

/** Istio's canonical service: `service.istio.io/canonical-name`, `app.kubernetes.io/name`, `app`, else the workload. */
export function canonicalService(labels: Record<string, string>, workload: string): string {
  return labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workload;
}

/** Istio's canonical revision: `service.istio.io/canonical-revision`, `app.kubernetes.io/version`, `version`, else `latest`. */
export function canonicalRevision(labels: Record<string, string>): string {
  return labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';
}

function orUnknown(v: string | undefined): string {
  return v === undefined || v === '' ? UNKNOWN : v;
}

function localPeer(proxy: ProxyIdentity, cluster: string): Omit<Peer, 'principal'> {
  return {
    workload: proxy.workload,
    namespace: proxy.namespace,
    app: proxy.labels.app ?? UNKNOWN,
    version: proxy.labels.version ?? UNKNOWN,
    canonicalService: canonicalService(proxy.labels, proxy.workload),
    canonicalRevision: canonicalRevision(proxy.labels),
    cluster,
  };
}

const SAN_NAMESPACE = /\/ns\/([^/]+)/;

/** One side's fields as a caller gives them. */
interface PeerFields {
  workload?: string;
  namespace?: string;
  principal?: string;
  app?: string;
  version?: string;
  canonicalService?: string;
  canonicalRevision?: string;
  cluster?: string;
}

/**
 * Resolves one side. The local side (`local` given) takes the proxy's identity for what the caller
 * left out. For a peer, as in istio_stats.cc: the namespace comes from the SPIFFE principal
 * (`…/ns/<ns>/sa/…`) when there is one, then from the caller; the canonical service falls back to
 * app then workload; the canonical revision to version then `latest`; the rest to `unknown`.
 */
function resolvePeer(f: PeerFields, local: Omit<Peer, 'principal'> | undefined): Peer {
  const principal = orUnknown(f.principal);
  if (local !== undefined) {
    return {
      workload: orUnknown(f.workload ?? local.workload),
      namespace: orUnknown(f.namespace ?? local.namespace),
      principal,
      app: orUnknown(f.app ?? local.app),
      version: orUnknown(f.version ?? local.version),
      canonicalService: orUnknown(f.canonicalService ?? local.canonicalService),
      canonicalRevision: f.canonicalRevision ?? local.canonicalRevision,
      cluster: orUnknown(f.cluster ?? local.cluster),
    };
  }
  const sanNamespace = f.principal !== undefined ? SAN_NAMESPACE.exec(f.principal)?.[1] : undefined;
  return {
    workload: orUnknown(f.workload),
    namespace: orUnknown(sanNamespace ?? f.namespace),
    principal,
    app: orUnknown(f.app),
    version: orUnknown(f.version),
    canonicalService: orUnknown(f.canonicalService ?? f.app ?? f.workload),
    canonicalRevision: f.canonicalRevision || f.version || 'latest',
    cluster: orUnknown(f.cluster),
  };
}

/**
 * The static label values of a series in STATIC_LABEL_NAMES order, plus connection_security_policy
 * (which Istio orders after response_flags).
 */
export function resolveStaticLabels(
  l: SeriesLabels,
  proxy: ProxyIdentity,
  localCluster: string,
): { values: string[]; connectionSecurityPolicy: string } {
  const local = localPeer(proxy, localCluster);
  const src = resolvePeer(
    {
      workload: l.sourceWorkload,
      namespace: l.sourceNamespace,
      principal: l.sourcePrincipal,
      app: l.sourceApp,
      version: l.sourceVersion,
      canonicalService: l.sourceCanonicalService,
      canonicalRevision: l.sourceCanonicalRevision,
      cluster: l.sourceCluster,
    },
    l.reporter === 'source' ? local : undefined,
  );
  const dst = resolvePeer(
    {
      workload: l.destinationWorkload,
      namespace: l.destinationNamespace,
      principal: l.destinationPrincipal,
      app: l.destinationApp,
      version: l.destinationVersion,
      canonicalService: l.destinationCanonicalService,
      canonicalRevision: l.destinationCanonicalRevision,
      cluster: l.destinationCluster,
    },
    l.reporter === 'destination' ? local : undefined,
  );
  // A server-side proxy that knows no service host names its own canonical service (Istio does too).
  const known = l.destinationService !== undefined && l.destinationService !== '' && l.destinationService !== UNKNOWN;
  const fqdn = known ? l.destinationService : l.reporter === 'destination' ? dst.canonicalService : UNKNOWN;
  const m = known ? SVC_FQDN.exec(fqdn) : null;
  const serviceName = orUnknown(l.destinationServiceName ?? (m ? m[1] : fqdn));
  const serviceNamespace = orUnknown(
    l.destinationServiceNamespace ?? (m ? m[2] : l.reporter === 'destination' ? dst.namespace : l.destinationNamespace),
  );
  return {
    values: [
      l.reporter,
      src.workload,
      src.namespace,
      src.principal,
      src.app,
      src.version,
      src.canonicalService,
      src.canonicalRevision,
      src.cluster,
      dst.workload,
      dst.namespace,
      dst.principal,
      dst.app,
      dst.version,
      fqdn,
      serviceName,
      serviceNamespace,
      dst.canonicalService,
      dst.canonicalRevision,
      dst.cluster,
      l.requestProtocol,
    ],
    connectionSecurityPolicy: l.connectionSecurityPolicy,
  };
}

/** True when two label sets name the same series (field by field; no key string is built). */
export function sameSeriesLabels(a: SeriesLabels, b: SeriesLabels): boolean {
  return (
    a.reporter === b.reporter &&
    a.destinationService === b.destinationService &&
    a.destinationWorkload === b.destinationWorkload &&
    a.destinationVersion === b.destinationVersion &&
    a.destinationNamespace === b.destinationNamespace &&
    a.requestProtocol === b.requestProtocol &&
    a.connectionSecurityPolicy === b.connectionSecurityPolicy &&
    a.sourceWorkload === b.sourceWorkload &&
    a.sourceNamespace === b.sourceNamespace &&
    a.sourceVersion === b.sourceVersion &&
    a.sourceApp === b.sourceApp &&
    a.destinationApp === b.destinationApp &&
    a.sourcePrincipal === b.sourcePrincipal &&
    a.destinationPrincipal === b.destinationPrincipal &&
    a.sourceCluster === b.sourceCluster &&
    a.destinationCluster === b.destinationCluster &&
    a.sourceCanonicalService === b.sourceCanonicalService &&
    a.sourceCanonicalRevision === b.sourceCanonicalRevision &&
    a.destinationCanonicalService === b.destinationCanonicalService &&
    a.destinationCanonicalRevision === b.destinationCanonicalRevision &&
    a.destinationServiceName === b.destinationServiceName &&
    a.destinationServiceNamespace === b.destinationServiceNamespace
  );
}
