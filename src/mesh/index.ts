export * from './object.js';
export type * from './api/index.js';
export * from './field-path.js';
export * from './load.js';
export * from './duration.js';
// CorsPolicy and RouteDestination also name Istio API types: import the snapshot ones from './snapshot.js'.
export { SNAPSHOT_FORMAT } from './snapshot.js';
export type {
  ProxyMode, ProxyIdentity, ProxySnapshot, MeshSettings, ExtensionProvider, RouteConfig, VirtualHost, StringMatcher, RouteMatch, HeaderOps, RetryPolicy, FaultPolicy, RedirectAction, RouteAction, Route, LoadBalancer, ConnectionPool, OutlierDetectionPolicy, UpstreamTls, UpstreamCluster, Endpoint, ClusterLoadAssignment, GatewayListener, PeerAuthMode, InboundPolicy, AuthorizationPolicyRef, JwtRuleSnapshot, TelemetrySettings,
} from './snapshot.js';
export * from './kinds.js';
export type { Schema } from './schemas/dsl.js';
export { checkSchema, objectName } from './schema-check.js';
export { validateObject, validateObjects, validateObjectSchema, sortDiagnostics } from './validate.js';
export { validateCrossObject, resolveHost } from './cross-object.js';
export { RETRY_ON_POLICIES } from './validators/virtual-service.js';
export { SNAPSHOT_JSON_SCHEMA, validateSnapshot } from './snapshot-schema.js';
export type { SnapshotCheck } from './snapshot-schema.js';
