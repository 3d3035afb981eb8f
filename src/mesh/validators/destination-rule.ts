/** DestinationRule semantics, after istio ValidateDestinationRule / validateTrafficPolicy. */
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';
import {
  arr,
  checkExportTo,
  checkHost,
  checkLabels,
  checkMinDuration,
  checkPercentage,
  checkPortNumber,
  entries,
  has,
  isDnsLabel,
  isObj,
} from './checks.js';
import type { Json } from './checks.js';

export function validateDestinationRule(spec: Json, report: ObjectReport): void {
  checkHost(report, 'spec.host', spec.host);
  checkExportTo(report, 'spec.exportTo', spec.exportTo, { namespace: report.obj.metadata?.namespace });
  if (isObj(spec.workloadSelector)) checkLabels(report, 'spec.workloadSelector.matchLabels', spec.workloadSelector.matchLabels);
  if (isObj(spec.trafficPolicy)) validateTrafficPolicy(report, 'spec.trafficPolicy', spec.trafficPolicy, true);

  const seen = new Map<string, number>();
  arr(spec.subsets).forEach((subset, i) => {
    if (!isObj(subset)) return;
    const path = `spec.subsets[${i}]`;
    if (typeof subset.name === 'string') {
      if (!isDnsLabel(subset.name)) report.error(`${path}.name`, `subset name ${JSON.stringify(subset.name)} is not a valid DNS-1123 label`);
      const first = seen.get(subset.name);
      if (first !== undefined) report.error(`${path}.name`, `duplicate subset name ${JSON.stringify(subset.name)} (first at subsets[${first}])`);
      else seen.set(subset.name, i);
    }
    checkLabels(report, `${path}.labels`, subset.labels);
    if (isObj(subset.trafficPolicy)) validateTrafficPolicy(report, `${path}.trafficPolicy`, subset.trafficPolicy, true);
  });
}

function validateTrafficPolicy(report: ObjectReport, path: string, policy: Json, allowPortLevel: boolean): void {
  const at = (field: string): string => childPath(path, field);
  const fields = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'];
  if (!fields.some((f) => has(policy, f))) report.error(path, 'traffic policy must have at least one field');
  if (isObj(policy.loadBalancer)) validateLoadBalancer(report, at('loadBalancer'), policy.loadBalancer);
  if (isObj(policy.connectionPool)) validateConnectionPool(report, at('connectionPool'), policy.connectionPool);
  if (isObj(policy.outlierDetection)) validateOutlierDetection(report, at('outlierDetection'), policy.outlierDetection);
  if (isObj(policy.tls)) validateClientTls(report, at('tls'), policy.tls);
  if (has(policy, 'tunnel') && has(policy, 'proxyProtocol')) report.error(at('proxyProtocol'), 'tunnel and proxyProtocol must not be set together');
  if (isObj(policy.tunnel)) {
    const protocol = policy.tunnel.protocol;
    if (typeof protocol === 'string' && !['CONNECT', 'POST'].includes(protocol)) report.error(childPath(at('tunnel'), 'protocol'), 'tunnel protocol must be CONNECT or POST');
    checkPortNumber(report, childPath(at('tunnel'), 'targetPort'), policy.tunnel.targetPort);
  }
  if (allowPortLevel) {
    const ports = new Map<number, number>();
    arr(policy.portLevelSettings).forEach((setting, i) => {
      if (!isObj(setting)) return;
      const settingPath = childPath(at('portLevelSettings'), i);
      if (!isObj(setting.port) || typeof setting.port.number !== 'number') {
        report.error(childPath(settingPath, 'port'), 'portLevelSettings needs port.number');
      } else {
        checkPortNumber(report, childPath(childPath(settingPath, 'port'), 'number'), setting.port.number);
        if (ports.has(setting.port.number)) report.error(childPath(settingPath, 'port'), `duplicate portLevelSettings for port ${setting.port.number}`);
        ports.set(setting.port.number, i);
      }
      const { port: _port, ...rest } = setting;
      validateTrafficPolicy(report, settingPath, rest, false);
    });
  }
}

function validateLoadBalancer(report: ObjectReport, path: string, lb: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (has(lb, 'simple') && has(lb, 'consistentHash')) report.error(path, 'loadBalancer may set only one of simple or consistentHash');
  if (has(lb, 'warmup') && has(lb, 'warmupDurationSecs')) report.error(at('warmupDurationSecs'), 'warmup and warmupDurationSecs are mutually exclusive');
  checkMinDuration(report, at('warmupDurationSecs'), lb.warmupDurationSecs);
  if (isObj(lb.warmup)) {
    checkMinDuration(report, childPath(at('warmup'), 'duration'), lb.warmup.duration);
    if (typeof lb.warmup.aggression === 'number' && lb.warmup.aggression < 1) report.error(childPath(at('warmup'), 'aggression'), 'warmup aggression must be at least 1');
  }
  if (isObj(lb.consistentHash)) {
    const hash = lb.consistentHash;
    const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'].filter((k) => has(hash, k));
    if (keys.length > 1) report.error(at('consistentHash'), `consistentHash may set only one key (found ${keys.join(', ')})`);
    const algorithms = ['ringHash', 'maglev'].filter((k) => has(hash, k));
    if (algorithms.length > 1) report.error(at('consistentHash'), 'consistentHash may set only one of ringHash or maglev');
    if (typeof hash.minimumRingSize === 'number' && hash.minimumRingSize !== 0) {
      const ringPath = childPath(at('consistentHash'), 'minimumRingSize');
      if (algorithms.length > 0) report.error(ringPath, 'only one of minimumRingSize or maglev/ringHash may be set');
      else report.warn(ringPath, 'minimumRingSize is deprecated; use ringHash.minimumRingSize');
    }
    if (isObj(hash.maglev)) {
      const tablePath = childPath(childPath(at('consistentHash'), 'maglev'), 'tableSize');
      const size = hash.maglev.tableSize;
      if (size === undefined || size === 0) report.error(tablePath, 'tableSize must be set for maglev');
      else if (typeof size === 'number' && (size >= 5000011 || !isPrime(size))) report.error(tablePath, `maglev tableSize ${size} must be a prime number below 5000011`);
    }
    if (hash.httpHeaderName === '') report.error(childPath(at('consistentHash'), 'httpHeaderName'), 'httpHeaderName must not be empty');
    if (isObj(hash.httpCookie) && hash.httpCookie.name === '') report.error(childPath(childPath(at('consistentHash'), 'httpCookie'), 'name'), 'cookie name must not be empty');
  }
  if (isObj(lb.localityLbSetting)) {
    const locality = lb.localityLbSetting;
    const localityPath = at('localityLbSetting');
    if (arr(locality.distribute).length > 0 && arr(locality.failover).length > 0) {
      report.error(localityPath, 'localityLbSetting cannot set both distribute and failover');
    }
    arr(locality.distribute).forEach((rule, i) => {
      if (!isObj(rule)) return;
      const total = entries(rule.to).reduce((sum, [, w]) => sum + (typeof w === 'number' ? w : 0), 0);
      if (total !== 100) report.error(childPath(childPath(localityPath, 'distribute'), i), `locality weights in "to" must total 100, got ${total}`);
    });
    arr(locality.failover).forEach((rule, i) => {
      if (isObj(rule) && rule.from === rule.to) report.error(childPath(childPath(localityPath, 'failover'), i), 'failover from and to must be different regions');
    });
  }
}

function validateConnectionPool(report: ObjectReport, path: string, pool: Json): void {
  if (!has(pool, 'tcp') && !has(pool, 'http')) report.error(path, 'connectionPool must set tcp or http');
  const nonNegative = (section: Json, sectionPath: string, fields: string[]): void => {
    for (const field of fields) {
      const value = section[field];
      if (typeof value === 'number' && value < 0) report.error(childPath(sectionPath, field), `${field} ${value} must not be negative`);
    }
  };
  if (isObj(pool.tcp)) {
    const tcpPath = childPath(path, 'tcp');
    nonNegative(pool.tcp, tcpPath, ['maxConnections']);
    checkMinDuration(report, childPath(tcpPath, 'connectTimeout'), pool.tcp.connectTimeout);
    checkMinDuration(report, childPath(tcpPath, 'maxConnectionDuration'), pool.tcp.maxConnectionDuration);
    if (isObj(pool.tcp.tcpKeepalive)) {
      checkMinDuration(report, childPath(childPath(tcpPath, 'tcpKeepalive'), 'time'), pool.tcp.tcpKeepalive.time);
      checkMinDuration(report, childPath(childPath(tcpPath, 'tcpKeepalive'), 'interval'), pool.tcp.tcpKeepalive.interval);
    }
  }
  if (isObj(pool.http)) {
    const httpPath = childPath(path, 'http');
    nonNegative(pool.http, httpPath, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']);
    checkMinDuration(report, childPath(httpPath, 'idleTimeout'), pool.http.idleTimeout);
    if (pool.http.h2UpgradePolicy === 'UPGRADE' && pool.http.useClientProtocol === true) {
      report.error(childPath(httpPath, 'useClientProtocol'), 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE');
    }
    if (isObj(pool.http.http2KeepAlive)) {
      checkMinDuration(report, childPath(childPath(httpPath, 'http2KeepAlive'), 'interval'), pool.http.http2KeepAlive.interval);
      checkMinDuration(report, childPath(childPath(httpPath, 'http2KeepAlive'), 'timeout'), pool.http.http2KeepAlive.timeout);
    }
  }
}

function validateOutlierDetection(report: ObjectReport, path: string, outlier: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (typeof outlier.consecutiveErrors === 'number' && outlier.consecutiveErrors !== 0) {
    report.warn(at('consecutiveErrors'), 'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors');
  }
  checkPercentage(report, at('maxEjectionPercent'), outlier.maxEjectionPercent);
  checkPercentage(report, at('minHealthPercent'), outlier.minHealthPercent);
  checkMinDuration(report, at('interval'), outlier.interval);
  checkMinDuration(report, at('baseEjectionTime'), outlier.baseEjectionTime);
  if (typeof outlier.consecutiveLocalOriginFailures === 'number' && outlier.consecutiveLocalOriginFailures > 0 && outlier.splitExternalLocalOriginErrors !== true) {
    report.error(at('consecutiveLocalOriginFailures'), 'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true');
  }
}

function validateClientTls(report: ObjectReport, path: string, tls: Json): void {
  const at = (field: string): string => childPath(path, field);
  if (tls.mode === 'ISTIO_MUTUAL') {
    const set = ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'caCrl'].filter((k) => has(tls, k));
    if (set.length > 0) report.error(at(set[0]), `ISTIO_MUTUAL uses Istio's certificates: ${set.join(', ')} must not be set`);
  }
  if (tls.mode === 'MUTUAL' && !has(tls, 'credentialName')) {
    if (!has(tls, 'clientCertificate')) report.error(at('clientCertificate'), 'MUTUAL TLS needs clientCertificate (or credentialName)');
    if (!has(tls, 'privateKey')) report.error(at('privateKey'), 'MUTUAL TLS needs privateKey (or credentialName)');
  }
  if ((tls.mode === 'DISABLE' || tls.mode === undefined) && ['clientCertificate', 'privateKey', 'credentialName'].some((k) => has(tls, k))) {
    report.error(at('mode'), 'client certificate settings need mode SIMPLE or MUTUAL');
  }
}

/** Envoy's isPrime, which Istio copies for the maglev table size. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let factor = 3; factor * factor <= x; factor += 2) if (x % factor === 0) return false;
  return true;
}
