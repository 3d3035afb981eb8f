/** networking.istio.io schemas (v1, v1beta1 and v1alpha3 share one schema: Istio generates aliases). */
import { destination, percentValue, portSelector, stringMatch, workloadSelector } from './common.js';
import { bool, duration, int32, list, mapOf, obj, oneOfValues, str, strList, strMap, uint32 } from './dsl.js';
import type { Schema } from './dsl.js';

// ---- VirtualService ----
const headerOperations = obj({ set: strMap, add: strMap, remove: strList });
const headers = obj({ request: headerOperations, response: headerOperations });

const httpMatchRequest = obj({
  name: str,
  uri: stringMatch,
  scheme: stringMatch,
  method: stringMatch,
  authority: stringMatch,
  headers: mapOf(stringMatch),
  port: uint32,
  sourceLabels: strMap,
  gateways: strList,
  queryParams: mapOf(stringMatch),
  ignoreUriCase: bool,
  withoutHeaders: mapOf(stringMatch),
  sourceNamespace: str,
  statPrefix: str,
});

const httpRouteDestination = obj({ destination, weight: int32, headers }, ['destination']);

const httpRoute = obj({
  name: str,
  match: list(httpMatchRequest),
  route: list(httpRouteDestination),
  redirect: obj({
    uri: str,
    prefixRewrite: str,
    authority: str,
    port: uint32,
    derivePort: oneOfValues('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'),
    scheme: str,
    redirectCode: uint32,
  }),
  directResponse: obj(
    { status: uint32, body: obj({ string: str, bytes: { type: 'string', contentEncoding: 'base64' } }) },
    ['status'],
  ),
  delegate: obj({ name: str, namespace: str }),
  rewrite: obj({ uri: str, authority: str, uriRegexRewrite: obj({ match: str, rewrite: str }) }),
  timeout: duration,
  retries: obj({
    attempts: int32,
    perTryTimeout: duration,
    retryOn: str,
    retryRemoteLocalities: bool,
    retryIgnorePreviousHosts: bool,
    backoff: duration,
  }),
  fault: obj({
    delay: obj({ fixedDelay: duration, exponentialDelay: duration, percentage: percentValue, percent: int32 }),
    abort: obj({ httpStatus: int32, grpcStatus: str, http2Error: str, percentage: percentValue }),
  }),
  mirror: destination,
  mirrorPercent: uint32,
  mirror_percent: uint32,
  mirrorPercentage: percentValue,
  mirrors: list(obj({ destination, percentage: percentValue }, ['destination'])),
  corsPolicy: obj({
    allowOrigin: strList,
    allowOrigins: list(stringMatch),
    allowMethods: strList,
    allowHeaders: strList,
    exposeHeaders: strList,
    maxAge: duration,
    allowCredentials: bool,
    unmatchedPreflights: oneOfValues('UNSPECIFIED', 'FORWARD', 'IGNORE'),
  }),
  headers,
});

const l4Match = {
  destinationSubnets: strList,
  port: uint32,
  sourceLabels: strMap,
  gateways: strList,
  sourceNamespace: str,
};
const routeDestination = obj({ destination, weight: int32 }, ['destination']);

export const virtualServiceSpec: Schema = obj({
  hosts: strList,
  gateways: strList,
  http: list(httpRoute),
  tls: list(obj({ match: list(obj({ ...l4Match, sniHosts: strList }, ['sniHosts'])), route: list(routeDestination) }, ['match'])),
  tcp: list(obj({ match: list(obj({ ...l4Match, sourceSubnet: str })), route: list(routeDestination) })),
  exportTo: strList,
});

// ---- DestinationRule ----
const localityFailover = list(obj({ from: str, to: str }));
const loadBalancer = obj({
  simple: oneOfValues('UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'),
  consistentHash: obj({
    httpHeaderName: str,
    httpCookie: obj({ name: str, path: str, ttl: duration, attributes: list(obj({ name: str, value: str }, ['name'])) }, ['name']),
    useSourceIp: bool,
    httpQueryParameterName: str,
    ringHash: obj({ minimumRingSize: { type: 'integer', minimum: 0 } }),
    maglev: obj({ tableSize: { type: 'integer', minimum: 0 } }),
    minimumRingSize: { type: 'integer', minimum: 0 },
  }),
  localityLbSetting: obj({
    distribute: list(obj({ from: str, to: mapOf(uint32) })),
    failover: localityFailover,
    failoverPriority: strList,
    enabled: bool,
  }),
  zoneAwareLbSetting: obj({
    enabled: bool,
    failover: localityFailover,
    failoverPriority: strList,
    minClusterSize: { type: 'integer', minimum: 1, maximum: 4294967295 },
  }),
  warmupDurationSecs: duration,
  warmup: obj({ duration, minimumPercent: { type: 'number', minimum: 0, maximum: 100 }, aggression: { type: 'number', minimum: 0 } }, ['duration']),
  backendUtilization: obj({
    errorUtilizationPenaltyPercent: uint32,
    metricNamesForComputingUtilization: strList,
    weightExpirationPeriod: duration,
    weightStabilizationPeriod: duration,
    weightUpdatePeriod: duration,
  }),
});

export const connectionPoolSettings: Schema = obj({
  tcp: obj({
    maxConnections: int32,
    connectTimeout: duration,
    tcpKeepalive: obj({ probes: uint32, time: duration, interval: duration }),
    maxConnectionDuration: duration,
    idleTimeout: duration,
  }),
  http: obj({
    http1MaxPendingRequests: int32,
    http2MaxRequests: int32,
    maxRequestsPerConnection: int32,
    maxRetries: int32,
    idleTimeout: duration,
    h2UpgradePolicy: oneOfValues('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'),
    useClientProtocol: bool,
    maxConcurrentStreams: int32,
    http2KeepAlive: obj({ interval: duration, timeout: duration }),
  }),
});

const outlierDetection = obj({
  splitExternalLocalOriginErrors: bool,
  consecutiveLocalOriginFailures: uint32,
  consecutiveGatewayErrors: uint32,
  consecutive5xxErrors: uint32,
  consecutiveErrors: int32,
  interval: duration,
  baseEjectionTime: duration,
  maxEjectionPercent: int32,
  minHealthPercent: int32,
  outlierDetectionHttpErrorCodes: list({ type: 'integer', minimum: 100, maximum: 599 }),
});

const clientTls = obj({
  mode: oneOfValues('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'),
  clientCertificate: str,
  privateKey: str,
  caCertificates: str,
  credentialName: str,
  subjectAltNames: strList,
  sni: str,
  insecureSkipVerify: bool,
  caCrl: str,
});

const policyParts = { loadBalancer, connectionPool: connectionPoolSettings, outlierDetection, tls: clientTls };

const trafficPolicy = obj({
  ...policyParts,
  portLevelSettings: list(obj({ port: portSelector, ...policyParts }), { maxItems: 4096 }),
  tunnel: obj({ protocol: str, targetHost: str, targetPort: uint32 }, ['targetHost', 'targetPort']),
  proxyProtocol: obj({ version: oneOfValues('V1', 'V2') }),
  retryBudget: obj({ percent: { type: 'number', minimum: 0, maximum: 100 }, minRetryConcurrency: uint32, budgetInterval: duration }),
});

export const destinationRuleSpec: Schema = obj(
  {
    host: str,
    trafficPolicy,
    subsets: list(obj({ name: str, labels: strMap, trafficPolicy }, ['name'])),
    exportTo: strList,
    workloadSelector,
  },
  ['host'],
);

// ---- Gateway ----
const gatewayPort = obj({ number: uint32, protocol: str, name: str, targetPort: uint32 }, ['number', 'protocol', 'name']);
const tlsVersion = oneOfValues('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3');
export const serverTlsSettings: Schema = obj({
  httpsRedirect: bool,
  mode: oneOfValues('PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'),
  serverCertificate: str,
  privateKey: str,
  caCertificates: str,
  caCrl: str,
  credentialName: str,
  credentialNames: list(str, { maxItems: 2 }),
  caCertCredentialName: str,
  tlsCertificates: list(obj({ serverCertificate: str, privateKey: str, caCertificates: str }), { maxItems: 2 }),
  subjectAltNames: strList,
  verifyCertificateSpki: strList,
  verifyCertificateHash: strList,
  minProtocolVersion: tlsVersion,
  maxProtocolVersion: tlsVersion,
  cipherSuites: strList,
  ecdhCurves: strList,
  insecureSkipVerify: bool,
});

export const gatewaySpec: Schema = obj({
  servers: list(obj({ port: gatewayPort, bind: str, hosts: strList, tls: serverTlsSettings, defaultEndpoint: str, name: str }, ['port', 'hosts'])),
  selector: strMap,
});

// ---- WorkloadEntry / ServiceEntry ----
const workloadEntryFields = {
  address: str,
  ports: mapOf({ type: 'integer', minimum: 1, maximum: 65535 }),
  labels: strMap,
  network: str,
  locality: str,
  weight: uint32,
  serviceAccount: str,
};
export const workloadEntrySpec: Schema = obj(workloadEntryFields);

const servicePort = obj(
  { number: { type: 'integer', minimum: 1, maximum: 65535 }, protocol: str, name: str, targetPort: { type: 'integer', minimum: 1, maximum: 65535 } },
  ['number', 'name'],
);

export const serviceEntrySpec: Schema = obj(
  {
    hosts: list(str, { maxItems: 256 }),
    addresses: list(str, { maxItems: 256 }),
    ports: list(servicePort, { maxItems: 256 }),
    location: oneOfValues('MESH_EXTERNAL', 'MESH_INTERNAL'),
    resolution: oneOfValues('NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'),
    endpoints: list(obj(workloadEntryFields), { maxItems: 4096 }),
    workloadSelector: obj({ labels: strMap }),
    exportTo: strList,
    subjectAltNames: strList,
  },
  ['hosts'],
);

// ---- Sidecar ----
const sidecarPort = obj({ number: uint32, protocol: str, name: str, targetPort: uint32 });
const captureMode = oneOfValues('DEFAULT', 'IPTABLES', 'NONE');
export const sidecarSpec: Schema = obj({
  workloadSelector: obj({ labels: strMap }),
  ingress: list(
    obj({ port: sidecarPort, bind: str, captureMode, defaultEndpoint: str, tls: serverTlsSettings, connectionPool: connectionPoolSettings }, ['port']),
  ),
  egress: list(obj({ port: sidecarPort, bind: str, captureMode, hosts: strList }, ['hosts'])),
  inboundConnectionPool: connectionPoolSettings,
  outboundTrafficPolicy: obj({
    mode: oneOfValues('REGISTRY_ONLY', 'ALLOW_ANY'),
    egressProxy: destination,
  }),
});
