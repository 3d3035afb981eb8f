/**
 * The one kinds table (STYLE.md §1): every kind Trellis accepts, with its group, served versions,
 * plural, scope and spec schema. The loader's callers, the validator, CRD generation and the CLI
 * read it from here. Semantic validators are attached by kind in ./validators/index.ts.
 */
import type { Schema } from './schemas/dsl.js';
import { openMap } from './schemas/dsl.js';
import { istioOperatorSpec } from './schemas/install.js';
import {
  destinationRuleSpec,
  gatewaySpec,
  serviceEntrySpec,
  sidecarSpec,
  virtualServiceSpec,
  workloadEntrySpec,
} from './schemas/networking.js';
import { authorizationPolicySpec, peerAuthenticationSpec, requestAuthenticationSpec } from './schemas/security.js';
import { telemetrySpec } from './schemas/telemetry.js';
import { clusterStatusSpec, clusterStatusStatus, fleetSpec } from './schemas/trellis.js';

export interface KindInfo {
  kind: string;
  group: string;
  /** Served versions, storage/preferred first. All served versions share one schema. */
  versions: readonly string[];
  plural: string;
  namespaced: boolean;
  spec: Schema;
  /** Schema of `.status`; Istio objects may carry an IstioStatus, which Trellis does not read. */
  status: Schema;
  /** metadata.name may be absent (istioctl accepts an unnamed IstioOperator, as in Istio's profiles). */
  nameOptional?: boolean;
}

const NETWORKING = 'networking.istio.io';
const SECURITY = 'security.istio.io';
const TELEMETRY = 'telemetry.istio.io';
export const TRELLIS_GROUP = 'trellis.dev';
const NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;
const SECURITY_VERSIONS = ['v1', 'v1beta1'] as const;
const istioStatus = openMap;

export const MESH_KINDS: readonly KindInfo[] = Object.freeze([
  { kind: 'VirtualService', group: NETWORKING, versions: NETWORKING_VERSIONS, plural: 'virtualservices', namespaced: true, spec: virtualServiceSpec, status: istioStatus },
  { kind: 'DestinationRule', group: NETWORKING, versions: NETWORKING_VERSIONS, plural: 'destinationrules', namespaced: true, spec: destinationRuleSpec, status: istioStatus },
  { kind: 'Gateway', group: NETWORKING, versions: NETWORKING_VERSIONS, plural: 'gateways', namespaced: true, spec: gatewaySpec, status: istioStatus },
  { kind: 'ServiceEntry', group: NETWORKING, versions: NETWORKING_VERSIONS, plural: 'serviceentries', namespaced: true, spec: serviceEntrySpec, status: istioStatus },
  { kind: 'Sidecar', group: NETWORKING, versions: NETWORKING_VERSIONS, plural: 'sidecars', namespaced: true, spec: sidecarSpec, status: istioStatus },
  { kind: 'WorkloadEntry', group: NETWORKING, versions: NETWORKING_VERSIONS, plural: 'workloadentries', namespaced: true, spec: workloadEntrySpec, status: istioStatus },
  { kind: 'PeerAuthentication', group: SECURITY, versions: SECURITY_VERSIONS, plural: 'peerauthentications', namespaced: true, spec: peerAuthenticationSpec, status: istioStatus },
  { kind: 'AuthorizationPolicy', group: SECURITY, versions: SECURITY_VERSIONS, plural: 'authorizationpolicies', namespaced: true, spec: authorizationPolicySpec, status: istioStatus },
  { kind: 'RequestAuthentication', group: SECURITY, versions: SECURITY_VERSIONS, plural: 'requestauthentications', namespaced: true, spec: requestAuthenticationSpec, status: istioStatus },
  // Telemetry stores v1alpha1 (ISTIO-SEMANTICS §1.1); both versions are served.
  { kind: 'Telemetry', group: TELEMETRY, versions: ['v1alpha1', 'v1'], plural: 'telemetries', namespaced: true, spec: telemetrySpec, status: istioStatus },
  { kind: 'IstioOperator', group: 'install.istio.io', versions: ['v1alpha1'], plural: 'istiooperators', namespaced: true, spec: istioOperatorSpec, status: openMap, nameOptional: true },
  { kind: 'Fleet', group: TRELLIS_GROUP, versions: ['v1alpha1'], plural: 'fleets', namespaced: false, spec: fleetSpec, status: openMap },
  { kind: 'ClusterStatus', group: TRELLIS_GROUP, versions: ['v1alpha1'], plural: 'clusterstatuses', namespaced: true, spec: clusterStatusSpec, status: clusterStatusStatus },
] satisfies KindInfo[]);

/** Istio (and Gateway API) kinds Trellis knows but does not implement: a warning, never dropped silently. */
export const UNSUPPORTED_KINDS: ReadonlyArray<{ group: string; kind: string }> = Object.freeze([
  { group: NETWORKING, kind: 'EnvoyFilter' },
  { group: NETWORKING, kind: 'WorkloadGroup' },
  { group: NETWORKING, kind: 'ProxyConfig' },
  { group: 'extensions.istio.io', kind: 'WasmPlugin' },
  { group: 'extensions.istio.io', kind: 'TrafficExtension' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
  { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' },
  { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' },
  { group: 'gateway.networking.k8s.io', kind: 'TCPRoute' },
  { group: 'gateway.networking.k8s.io', kind: 'TLSRoute' },
  { group: 'gateway.networking.k8s.io', kind: 'ReferenceGrant' },
]);

/**
 * Kubernetes workload kinds that may sit beside mesh config in a kustomize base. `Service` is read
 * (its `<name>` is a known host for cross-object checks) and reported nothing; the others are
 * reported as "not applied".
 */
export const KUBERNETES_KINDS: ReadonlyArray<{ group: string; kind: string; informational?: boolean }> = Object.freeze([
  { group: '', kind: 'Service', informational: true },
  { group: '', kind: 'ServiceAccount' },
  { group: '', kind: 'ConfigMap' },
  { group: '', kind: 'Secret' },
  { group: '', kind: 'Namespace' },
  { group: 'apps', kind: 'Deployment' },
  { group: 'apps', kind: 'StatefulSet' },
  { group: 'apps', kind: 'DaemonSet' },
]);

export type KindLookup =
  | { status: 'supported'; info: KindInfo; version: string }
  | { status: 'unserved-version'; info: KindInfo; version: string }
  | { status: 'unsupported'; group: string; kind: string }
  | { status: 'kubernetes'; group: string; kind: string; informational: boolean }
  | { status: 'unknown'; group: string; kind: string };

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

const BY_GROUP_KIND = new Map(MESH_KINDS.map((info) => [`${info.group}/${info.kind}`, info]));
const UNSUPPORTED = new Set(UNSUPPORTED_KINDS.map((k) => `${k.group}/${k.kind}`));
const KUBERNETES = new Map(KUBERNETES_KINDS.map((k) => [`${k.group}/${k.kind}`, k]));

export function lookupKind(apiVersion: string, kind: string): KindLookup {
  const { group, version } = splitApiVersion(apiVersion);
  const key = `${group}/${kind}`;
  const info = BY_GROUP_KIND.get(key);
  if (info) return info.versions.includes(version) ? { status: 'supported', info, version } : { status: 'unserved-version', info, version };
  if (UNSUPPORTED.has(key)) return { status: 'unsupported', group, kind };
  const k8s = KUBERNETES.get(key);
  if (k8s) return { status: 'kubernetes', group, kind, informational: k8s.informational === true };
  return { status: 'unknown', group, kind };
}

export function kindInfo(kind: string, group?: string): KindInfo | undefined {
  return MESH_KINDS.find((info) => info.kind === kind && (group === undefined || info.group === group));
}
