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
  checkWorkloadSelector,
  isCidrOrIp,
  isDnsLabel,
  isK8sNamespace,
  isObj,
  isTlsProtocol,
} from './checks.js';
import type { Json } from './checks.js';
import { validateDestination } from './virtual-service.js';

// ---- Gateway ----
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY']);

function isHttpProtocol(protocol: unknown): boolean {
  return typeof protocol === 'string' && HTTP_PROTOCOLS.has(protocol.toUpperCase());
}

export function validateGateway(spec: Json, report: ObjectReport): void {
  const name = report.obj.metadata?.name;
  if (typeof name === 'string' && !isDnsLabel(name)) report.error('metadata.name', `invalid gateway name ${JSON.stringify(name)}: a Gateway name must be a DNS-1123 label (no dots)`);
  checkLabels(report, 'spec.selector', spec.selector);
  const servers = arr(spec.servers);
  if (servers.length === 0) report.error('spec.servers', 'a Gateway needs at least one server');
  const portNames = new Map<string, number>();
  servers.forEach((server, i) => {
    if (!isObj(server)) return;
    const path = `spec.servers[${i}]`;
    const hosts = arr(server.hosts);
    if (hosts.length === 0) report.error(`${path}.hosts`, 'a server needs at least one host');
    hosts.forEach((host, j) => {
      if (typeof host === 'string') checkGatewayHost(report, `${path}.hosts[${j}]`, host);
    });
    const unixBind = typeof server.bind === 'string' && server.bind.startsWith('unix://');
    const port = isObj(server.port) ? server.port : undefined;
    if (port) {
      if (!unixBind || port.number !== 0) checkPortNumber(report, `${path}.port.number`, port.number);
      if (unixBind && typeof port.number === 'number' && port.number !== 0) report.error(`${path}.port.number`, 'port number must be 0 for a unix domain socket bind');
      checkProtocol(report, `${path}.port.protocol`, port.protocol);
      if (typeof port.targetPort === 'number' && port.targetPort > 0) report.error(`${path}.port.targetPort`, 'targetPort has no effect on Gateways');
      if (typeof port.name === 'string') {
        const first = portNames.get(port.name);
        if (first !== undefined) report.error(`${path}.port.name`, `port names in servers must be unique: ${JSON.stringify(port.name)} is also used by servers[${first}]`);
        else portNames.set(port.name, i);
      }
    }
    if (typeof server.bind === 'string' && server.bind !== '' && !unixBind && isIP(server.bind) === 0) {
      report.error(`${path}.bind`, `bind ${JSON.stringify(server.bind)} must be an IP address or a unix:// path`);
    }
    const tls = isObj(server.tls) ? server.tls : undefined;
    if (tls) validateServerTls(report, `${path}.tls`, tls);
    if (!port || typeof port.protocol !== 'string') return;
    if (isTlsProtocol(port.protocol)) {
      if (!tls) report.error(`${path}.tls`, `a server with protocol ${port.protocol} needs tls settings`);
    } else if (tls) {
      if (!isHttpProtocol(port.protocol)) {
        report.error(`${path}.tls`, `a server with protocol ${port.protocol} cannot have tls settings (only HTTPS/TLS ports can)`);
      } else if (!isPassthrough(tls) || ['caCertificates', 'privateKey', 'serverCertificate'].some((k) => has(tls, k))) {
        report.error(`${path}.tls`, 'a plain-text HTTP server cannot have tls settings other than httpsRedirect');
      }
    }
    if (tls?.httpsRedirect === true && !isHttpProtocol(port.protocol)) report.warn(`${path}.tls.httpsRedirect`, 'httpsRedirect should only be used with HTTP servers');
  });
}

/** ServerTLSSettings.mode defaults to PASSTHROUGH (the proto's zero value). */
function tlsMode(tls: Json): string {
  return typeof tls.mode === 'string' ? tls.mode : 'PASSTHROUGH';
}

function isPassthrough(tls: Json): boolean {
  return ['PASSTHROUGH', 'AUTO_PASSTHROUGH'].includes(tlsMode(tls));
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

/** After istio validateTLSOptions. */
function validateServerTls(report: ObjectReport, path: string, tls: Json): void {
  const mode = tlsMode(tls);
  const at = (field: string): string => childPath(path, field);
  const certFields = ['serverCertificate', 'privateKey', 'caCertificates', 'tlsCertificates', 'credentialName', 'credentialNames'];
  if (mode === 'ISTIO_MUTUAL') {
    for (const field of certFields.filter((k) => has(tls, k))) report.error(at(field), `ISTIO_MUTUAL TLS uses Istio certificates: ${field} must not be set`);
    return;
  }
  if (isPassthrough(tls) && [...certFields, 'caCrl'].some((k) => has(tls, k))) {
    report.warn(path, `${mode} mode does not use certificates; they are ignored`);
  }
  const sources = [
    has(tls, 'serverCertificate') && has(tls, 'privateKey') ? 'serverCertificate/privateKey' : undefined,
    has(tls, 'credentialName') ? 'credentialName' : undefined,
    arr(tls.credentialNames).length > 0 ? 'credentialNames' : undefined,
    arr(tls.tlsCertificates).length > 0 ? 'tlsCertificates' : undefined,
  ].filter((x): x is string => x !== undefined);
  if (sources.length > 1) report.error(path, `only one certificate source may be set (found ${sources.join(', ')})`);
  if (has(tls, 'caCrl')) {
    if (has(tls, 'credentialName')) report.error(at('caCrl'), 'caCrl is not supported with credentialName (put the CRL in the credential)');
    if (mode === 'SIMPLE') report.error(at('caCrl'), 'caCrl is not supported with SIMPLE TLS');
  }
  if (!['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL'].includes(mode)) return;
  if (has(tls, 'credentialName') || arr(tls.credentialNames).length > 0) return; // fetched remotely
  const label = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
  if (mode !== 'SIMPLE' && !has(tls, 'caCertificates')) report.error(at('caCertificates'), `${label} requires caCertificates (a client CA bundle) or a credentialName`);
  const certs = arr(tls.tlsCertificates).length > 0 ? arr(tls.tlsCertificates).map((c, i): [string, unknown] => [childPath(at('tlsCertificates'), i), c]) : [[path, tls] as [string, unknown]];
  for (const [certPath, cert] of certs) {
    if (!isObj(cert)) continue;
    if (!has(cert, 'serverCertificate')) report.error(childPath(certPath, 'serverCertificate'), `${label} requires serverCertificate (or a credentialName)`);
    if (!has(cert, 'privateKey')) report.error(childPath(certPath, 'privateKey'), `${label} requires privateKey (or a credentialName)`);
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
  const resolution = typeof spec.resolution === 'string' ? spec.resolution : 'NONE';
  let cidr = false;
  arr(spec.addresses).forEach((address, i) => {
    if (typeof address !== 'string') return;
    if (!isCidrOrIp(address)) report.error(`spec.addresses[${i}]`, `${JSON.stringify(address)} is not an IP address or CIDR`);
    cidr ||= address.includes('/');
  });
  if (cidr && resolution !== 'NONE' && resolution !== 'STATIC') report.error('spec.addresses', `CIDR addresses are allowed only with resolution NONE or STATIC, not ${resolution}`);
  checkExportTo(report, 'spec.exportTo', spec.exportTo, { allowNone: true, namespace: report.obj.metadata?.namespace });

  const numbers = new Map<number, number>();
  const names = new Map<string, number>();
  let nonHttpPort: string | undefined;
  arr(spec.ports).forEach((port, i) => {
    if (!isObj(port)) return;
    const path = `spec.ports[${i}]`;
    if (typeof port.number === 'number') {
      if (numbers.has(port.number)) report.error(`${path}.number`, `port number ${port.number} is not unique (also ports[${numbers.get(port.number)}])`);
      else numbers.set(port.number, i);
    }
    if (typeof port.name === 'string') {
      if (!isDnsLabel(port.name)) report.error(`${path}.name`, `port name ${JSON.stringify(port.name)} is not a valid DNS-1123 label`);
      if (names.has(port.name)) report.error(`${path}.name`, `port name ${JSON.stringify(port.name)} is not unique (also ports[${names.get(port.name)}])`);
      else names.set(port.name, i);
    }
    checkProtocol(report, `${path}.protocol`, port.protocol);
    if (!isHttpProtocol(port.protocol) && !isTlsProtocol(port.protocol)) nonHttpPort ??= path;
  });
  // Plain TCP cannot tell hosts apart (no Host header, no SNI), unless resolution NONE ignores them.
  if (resolution !== 'NONE' && hosts.length > 1 && nonHttpPort) report.error(nonHttpPort, 'multiple hosts with a non-HTTP, non-TLS port need resolution NONE');

  const endpoints = arr(spec.endpoints);
  if (endpoints.length > 0 && has(spec, 'workloadSelector')) report.error('spec.workloadSelector', 'only one of workloadSelector or endpoints may be set');
  if (isObj(spec.workloadSelector)) checkWorkloadSelector(report, 'spec.workloadSelector', spec.workloadSelector, 'labels');
  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) report.error('spec.endpoints', 'no endpoints may be given for resolution NONE');
      if (has(spec, 'workloadSelector')) report.warn('spec.workloadSelector', 'workloadSelector should not be set with resolution NONE');
      break;
    case 'STATIC':
      // Istio accepts this; with no endpoints and no selector the service has no backends at all.
      if (endpoints.length === 0 && !has(spec, 'workloadSelector')) report.warn('spec.resolution', 'resolution STATIC without endpoints or a workloadSelector: the service has no backends');
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
          if (typeof host === 'string' && host.includes('*')) report.error(`spec.hosts[${i}]`, `hosts must be FQDNs (no wildcard ${JSON.stringify(host)}) when resolution ${resolution} has no endpoints`);
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
      if (!names.has(name)) report.error(childPath(`${path}.ports`, name), `endpoint port ${JSON.stringify(name)} is not defined by the ServiceEntry's ports`);
    }
  });
}

// ---- WorkloadEntry ----
export function validateWorkloadEntry(spec: Json, report: ObjectReport): void {
  validateWorkloadEntryFields(report, 'spec', spec);
}

function validateWorkloadEntryFields(report: ObjectReport, path: string, entry: Json): void {
  if (!entry.address) {
    if (!entry.network) report.error(childPath(path, 'address'), 'address is required (or network, for a workload behind a network gateway)');
    else report.warn(path, `address is unset with network ${JSON.stringify(entry.network)}`);
  }
  if (typeof entry.address === 'string' && entry.address !== '') {
    const address = entry.address;
    if (address.startsWith('unix://')) {
      if (entries(entry.ports).length > 0) report.error(childPath(path, 'ports'), `unix endpoint ${address} must not include ports`);
    } else if (isIP(address) === 0 && (address.includes('*') || hostError(address) !== undefined)) {
      report.error(childPath(path, 'address'), `address ${JSON.stringify(address)} is not a valid FQDN or an IP address`);
    }
  }
  checkLabels(report, childPath(path, 'labels'), entry.labels);
  for (const [name] of entries(entry.ports)) {
    if (!isDnsLabel(name)) report.error(childPath(childPath(path, 'ports'), name), `port name ${JSON.stringify(name)} is not a valid DNS-1123 label`);
  }
}

// ---- Sidecar ----
export function validateSidecar(spec: Json, report: ObjectReport): void {
  if (isObj(spec.workloadSelector)) checkWorkloadSelector(report, 'spec.workloadSelector', spec.workloadSelector, 'labels');
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
    if (typeof ingress.defaultEndpoint === 'string' && ingress.defaultEndpoint !== '' && !/^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\])?:[0-9]+$|^unix:\/\/.+/.test(ingress.defaultEndpoint)) {
      report.error(`${path}.defaultEndpoint`, 'defaultEndpoint must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix://PATH');
    }
    if (isObj(ingress.port) && typeof ingress.port.targetPort === 'number' && ingress.port.targetPort > 0) report.error(`${path}.port.targetPort`, 'targetPort has no effect on Sidecars');
    if (typeof ingress.bind === 'string' && ingress.bind !== '' && isIP(ingress.bind) === 0) report.error(`${path}.bind`, `bind ${JSON.stringify(ingress.bind)} must be an IP address`);
  });
  let catchAll = -1;
  const egressList = arr(spec.egress);
  const egressPorts = new Map<number, number>();
  egressList.forEach((egress, i) => {
    if (!isObj(egress)) return;
    const path = `spec.egress[${i}]`;
    if (!has(egress, 'port')) {
      if (catchAll >= 0) report.error(path, `egress can have only one listener without port (egress[${catchAll}] is one)`);
      else if (i !== egressList.length - 1) report.error(path, 'the egress listener without port (the catch-all) must be the last one');
      if (catchAll < 0) catchAll = i;
    }
    if (isObj(egress.port)) {
      const number = egress.port.number;
      if (number !== 0) checkPortNumber(report, `${path}.port.number`, number);
      else if (!(typeof egress.bind === 'string' && egress.bind.startsWith('unix://'))) report.error(`${path}.port.number`, 'port 0 needs a unix:// bind address');
      checkProtocol(report, `${path}.port.protocol`, egress.port.protocol);
      if (typeof number === 'number' && number !== 0) {
        if (egressPorts.has(number)) report.error(`${path}.port.number`, `ports on IP-bound egress listeners must be unique: ${number} is also used by egress[${egressPorts.get(number)}]`);
        else egressPorts.set(number, i);
      }
      if (typeof egress.port.targetPort === 'number' && egress.port.targetPort > 0) report.error(`${path}.port.targetPort`, 'targetPort has no effect on Sidecars');
    }
    if (typeof egress.bind === 'string' && egress.bind !== '' && !egress.bind.startsWith('unix://') && isIP(egress.bind) === 0) {
      report.error(`${path}.bind`, `bind ${JSON.stringify(egress.bind)} must be an IP address or a unix:// path`);
    }
    const hosts = arr(egress.hosts);
    if (hosts.length === 0) report.error(`${path}.hosts`, 'an egress listener needs at least one host');
    hosts.forEach((host, j) => {
      if (typeof host === 'string') checkSidecarHost(report, `${path}.hosts[${j}]`, host);
    });
  });
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

