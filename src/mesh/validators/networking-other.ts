/** Gateway, ServiceEntry, Sidecar and WorkloadEntry semantics, after istio pkg/config/validation. */
import { isIP } from 'node:net';
import { childPath } from '../field-path.js';
import type { ObjectReport } from './context.js';
import {
  arr,
  checkExportTo,
  checkHost,
  checkLabels,
  checkPortNumber,
  checkProtocol,
  entries,
  has,
  hostError,
  isCidrOrIp,
  isK8sNamespace,
  isObj,
  isTlsProtocol,
} from './checks.js';
import type { Json } from './checks.js';
import { validateDestination } from './virtual-service.js';

// ---- Gateway ----
export function validateGateway(spec: Json, report: ObjectReport): void {
  checkLabels(report, 'spec.selector', spec.selector);
  const servers = arr(spec.servers);
  if (servers.length === 0) report.error('spec.servers', 'a Gateway needs at least one server');
  const portNames = new Map<string, { number: number; index: number }>();
  servers.forEach((server, i) => {
    if (!isObj(server)) return;
    const path = `spec.servers[${i}]`;
    const hosts = arr(server.hosts);
    if (hosts.length === 0) report.error(`${path}.hosts`, 'a server needs at least one host');
    hosts.forEach((host, j) => {
      if (typeof host === 'string') checkGatewayHost(report, `${path}.hosts[${j}]`, host);
    });
    const port = isObj(server.port) ? server.port : undefined;
    if (port) {
      checkPortNumber(report, `${path}.port.number`, port.number);
      checkProtocol(report, `${path}.port.protocol`, port.protocol);
      if (typeof port.name === 'string' && port.name !== '' && typeof port.number === 'number') {
        const first = portNames.get(port.name);
        if (first === undefined) portNames.set(port.name, { number: port.number, index: i });
        else if (first.number !== port.number) {
          report.error(`${path}.port.name`, `port name ${JSON.stringify(port.name)} is already used by servers[${first.index}] for port ${first.number}`);
        }
      }
    }
    if (typeof server.bind === 'string' && !server.bind.startsWith('unix://') && isIP(server.bind) === 0) {
      report.error(`${path}.bind`, `bind ${JSON.stringify(server.bind)} must be an IP address or a unix:// path`);
    }
    const tls = isObj(server.tls) ? server.tls : undefined;
    const tlsProtocol = port ? isTlsProtocol(port.protocol) : false;
    if (tlsProtocol && !tls) report.error(`${path}.tls`, `server with protocol ${String(port?.protocol)} needs tls settings`);
    if (tls) {
      if (!tlsProtocol && tls.httpsRedirect !== true) report.error(`${path}.tls`, 'a plain-text server (not HTTPS/TLS) cannot have tls settings other than httpsRedirect');
      if (tlsProtocol) validateServerTls(report, `${path}.tls`, tls);
    }
  });
}

function checkGatewayHost(report: ObjectReport, path: string, host: string): void {
  const parts = host.split('/');
  if (parts.length > 2) {
    report.error(path, `host ${JSON.stringify(host)} must be "<dnsName>" or "<namespace>/<dnsName>"`);
    return;
  }
  const [namespace, dnsName] = parts.length === 2 ? parts : ['*', parts[0]];
  if (!['*', '.', '~'].includes(namespace) && !isK8sNamespace(namespace)) {
    report.error(path, `host ${JSON.stringify(host)}: namespace ${JSON.stringify(namespace)} must be "*", "." or a namespace name`);
  }
  if (isIP(dnsName) !== 0) return;
  const error = hostError(dnsName);
  if (error) report.error(path, error);
}

function validateServerTls(report: ObjectReport, path: string, tls: Json): void {
  const mode = tls.mode ?? 'SIMPLE';
  const hasCredential = has(tls, 'credentialName') || arr(tls.credentialNames).length > 0 || arr(tls.tlsCertificates).length > 0;
  const setCount = [has(tls, 'credentialName'), has(tls, 'credentialNames'), has(tls, 'tlsCertificates')].filter(Boolean).length;
  if (setCount > 1) report.error(path, 'only one of credentialName, credentialNames or tlsCertificates may be set');
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    if (!hasCredential) {
      if (!has(tls, 'serverCertificate')) report.error(childPath(path, 'serverCertificate'), `${String(mode)} TLS needs serverCertificate (or credentialName)`);
      if (!has(tls, 'privateKey')) report.error(childPath(path, 'privateKey'), `${String(mode)} TLS needs privateKey (or credentialName)`);
      if (mode !== 'SIMPLE' && !has(tls, 'caCertificates')) report.error(childPath(path, 'caCertificates'), `${String(mode)} TLS needs caCertificates (or credentialName)`);
    }
  }
  if (mode === 'ISTIO_MUTUAL' && (hasCredential || has(tls, 'serverCertificate') || has(tls, 'privateKey'))) {
    report.error(path, 'ISTIO_MUTUAL uses Istio certificates: credentialName, serverCertificate and privateKey must not be set');
  }
}

// ---- ServiceEntry ----
export function validateServiceEntry(spec: Json, report: ObjectReport): void {
  const hosts = arr(spec.hosts);
  if (hosts.length === 0) report.error('spec.hosts', 'a ServiceEntry needs at least one host');
  hosts.forEach((host, i) => {
    if (host === '*') report.error(`spec.hosts[${i}]`, 'host "*" is not allowed in a ServiceEntry');
    else checkHost(report, `spec.hosts[${i}]`, host);
  });
  arr(spec.addresses).forEach((address, i) => {
    if (typeof address === 'string' && !isCidrOrIp(address)) report.error(`spec.addresses[${i}]`, `${JSON.stringify(address)} is not an IP address or CIDR`);
  });
  checkExportTo(report, 'spec.exportTo', spec.exportTo);

  const numbers = new Map<number, number>();
  const names = new Map<string, number>();
  arr(spec.ports).forEach((port, i) => {
    if (!isObj(port)) return;
    const path = `spec.ports[${i}]`;
    if (typeof port.number === 'number') {
      if (numbers.has(port.number)) report.error(`${path}.number`, `port number ${port.number} is not unique (also ports[${numbers.get(port.number)}])`);
      else numbers.set(port.number, i);
    }
    if (typeof port.name === 'string') {
      if (!isPortName(port.name)) report.error(`${path}.name`, `port name ${JSON.stringify(port.name)} is not a valid port name`);
      if (names.has(port.name)) report.error(`${path}.name`, `port name ${JSON.stringify(port.name)} is not unique (also ports[${names.get(port.name)}])`);
      else names.set(port.name, i);
    }
    checkProtocol(report, `${path}.protocol`, port.protocol);
  });

  const endpoints = arr(spec.endpoints);
  const resolution = spec.resolution ?? 'NONE';
  if (endpoints.length > 0 && has(spec, 'workloadSelector')) report.error('spec.workloadSelector', 'workloadSelector and endpoints are mutually exclusive');
  if (isObj(spec.workloadSelector)) checkLabels(report, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) report.error('spec.endpoints', 'no endpoints may be given for resolution NONE');
      break;
    case 'STATIC':
      if (endpoints.length === 0 && !has(spec, 'workloadSelector')) report.error('spec.resolution', 'resolution STATIC needs endpoints (or a workloadSelector)');
      endpoints.forEach((endpoint, i) => {
        if (isObj(endpoint) && typeof endpoint.address === 'string' && isIP(endpoint.address) === 0 && !endpoint.address.startsWith('unix://')) {
          report.error(`spec.endpoints[${i}].address`, `resolution STATIC needs IP (or unix://) endpoint addresses, got ${JSON.stringify(endpoint.address)}`);
        }
      });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        hosts.forEach((host, i) => {
          if (typeof host === 'string' && host.startsWith('*')) report.error(`spec.hosts[${i}]`, `wildcard host ${JSON.stringify(host)} is not allowed with resolution ${String(resolution)} and no endpoints`);
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) report.error('spec.endpoints', 'resolution DNS_ROUND_ROBIN allows at most one endpoint');
      break;
    default:
      break;
  }
  endpoints.forEach((endpoint, i) => {
    if (!isObj(endpoint)) return;
    const path = `spec.endpoints[${i}]`;
    validateWorkloadEntryFields(report, path, endpoint);
    for (const [name] of entries(endpoint.ports)) {
      if (names.size > 0 && !names.has(name)) report.error(childPath(`${path}.ports`, name), `endpoint port ${JSON.stringify(name)} is not defined by the ServiceEntry's ports`);
    }
  });
}

function isPortName(name: string): boolean {
  return name.length > 0 && name.length <= 63 && /^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/.test(name);
}

// ---- WorkloadEntry ----
export function validateWorkloadEntry(spec: Json, report: ObjectReport): void {
  validateWorkloadEntryFields(report, 'spec', spec);
}

function validateWorkloadEntryFields(report: ObjectReport, path: string, entry: Json): void {
  if (!has(entry, 'address') && !has(entry, 'network')) report.error(childPath(path, 'address'), 'address is required (or network, for a workload behind a network gateway)');
  if (typeof entry.address === 'string') {
    const address = entry.address;
    if (address.startsWith('unix://')) {
      if (arr(Object.keys(isObj(entry.ports) ? entry.ports : {})).length > 0) report.error(childPath(path, 'ports'), 'a unix:// address cannot have ports');
    } else if (isIP(address) === 0) {
      const error = hostError(address);
      if (error) report.error(childPath(path, 'address'), `address ${JSON.stringify(address)} must be an IP, a DNS name or unix:// path`);
    }
  }
  checkLabels(report, childPath(path, 'labels'), entry.labels);
  for (const [name] of entries(entry.ports)) {
    if (!isPortName(name)) report.error(childPath(childPath(path, 'ports'), name), `port name ${JSON.stringify(name)} is not valid`);
  }
}

// ---- Sidecar ----
export function validateSidecar(spec: Json, report: ObjectReport): void {
  if (isObj(spec.workloadSelector)) checkLabels(report, 'spec.workloadSelector.labels', spec.workloadSelector.labels);
  if (!['egress', 'ingress', 'outboundTrafficPolicy', 'inboundConnectionPool'].some((k) => has(spec, k))) {
    report.error('spec', 'empty Sidecar: set egress, ingress, outboundTrafficPolicy or inboundConnectionPool');
  }
  const ingressPorts = new Map<number, number>();
  arr(spec.ingress).forEach((ingress, i) => {
    if (!isObj(ingress)) return;
    const path = `spec.ingress[${i}]`;
    if (isObj(ingress.port)) {
      checkPortNumber(report, `${path}.port.number`, ingress.port.number);
      checkProtocol(report, `${path}.port.protocol`, ingress.port.protocol);
      const number = ingress.port.number;
      if (typeof number === 'number') {
        if (ingressPorts.has(number)) report.error(`${path}.port.number`, `ingress port ${number} is already used by ingress[${ingressPorts.get(number)}]`);
        else ingressPorts.set(number, i);
      }
    }
    if (typeof ingress.defaultEndpoint === 'string' && !/^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):[0-9]+$|^unix:\/\/.+/.test(ingress.defaultEndpoint)) {
      report.error(`${path}.defaultEndpoint`, 'defaultEndpoint must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://PATH');
    }
    if (typeof ingress.bind === 'string' && isIP(ingress.bind) === 0) report.error(`${path}.bind`, `bind ${JSON.stringify(ingress.bind)} must be an IP address`);
  });
  let catchAll = 0;
  arr(spec.egress).forEach((egress, i) => {
    if (!isObj(egress)) return;
    const path = `spec.egress[${i}]`;
    if (!has(egress, 'port')) catchAll++;
    if (isObj(egress.port)) {
      checkPortNumber(report, `${path}.port.number`, egress.port.number);
      checkProtocol(report, `${path}.port.protocol`, egress.port.protocol);
    }
    const hosts = arr(egress.hosts);
    if (hosts.length === 0) report.error(`${path}.hosts`, 'an egress listener needs at least one host');
    hosts.forEach((host, j) => {
      if (typeof host === 'string') checkSidecarHost(report, `${path}.hosts[${j}]`, host);
    });
  });
  if (catchAll > 1) report.error('spec.egress', 'at most one egress listener may omit port (the catch-all)');
  if (isObj(spec.outboundTrafficPolicy)) {
    const policy = spec.outboundTrafficPolicy;
    if (has(policy, 'egressProxy') && policy.mode !== 'ALLOW_ANY') {
      report.error('spec.outboundTrafficPolicy.egressProxy', 'egressProxy may be set only with mode ALLOW_ANY');
    }
    if (isObj(policy.egressProxy)) validateDestination(report, 'spec.outboundTrafficPolicy.egressProxy', policy.egressProxy);
  }
}

function checkSidecarHost(report: ObjectReport, path: string, host: string): void {
  const parts = host.split('/');
  if (parts.length !== 2) {
    report.error(path, `egress host ${JSON.stringify(host)} must be "<namespace>/<dnsName>" (namespace "*", "." or "~" allowed)`);
    return;
  }
  const [namespace, dnsName] = parts;
  if (!['*', '.', '~'].includes(namespace) && !isK8sNamespace(namespace)) report.error(path, `egress host ${JSON.stringify(host)}: invalid namespace ${JSON.stringify(namespace)}`);
  if (dnsName === '*' || dnsName === '~') return;
  const error = hostError(dnsName);
  if (error) report.error(path, error);
}

