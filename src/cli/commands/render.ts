import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LineCounter, isMap, isSeq, parseDocument, stringify, type Node as YamlNode } from 'yaml';
import { formatDiagnostic, type MeshObject } from '../../mesh/object.js';
import type { ProxyIdentity, ProxyMode } from '../../mesh/snapshot.js';
import type { ClusterRender, WorkloadEndpoint } from '../../render/types.js';
import { loadRepositoryFromDir } from '../../render/repository.js';
import { buildProxySnapshot } from '../../render/snapshot/index.js';

/** A user-facing failure: printed as is (it already names file:line where there is one), exit 1. */
class RenderCliError extends Error {}

export interface RenderOptions {
  cluster: string;
  output: string;
  repo: string;
  proxy?: string;
  labels?: string;
  service?: string;
  serviceAccount?: string;
  mode: string;
  endpoints?: string;
}

export function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const pair of text.split(',').map((p) => p.trim()).filter((p) => p.length > 0)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new RenderCliError(`--labels: "${pair}" is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/** `--endpoints FILE`: a YAML list of WorkloadEndpoint; every problem names file:line:col and the field. */
export async function readEndpointsFile(file: string): Promise<WorkloadEndpoint[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RenderCliError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  const where = (node: YamlNode | null | undefined): string => {
    const pos = lineCounter.linePos(node?.range?.[0] ?? 0);
    return `${file}:${pos.line}:${pos.col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new RenderCliError(`${file}:${e.linePos?.[0].line ?? 1}:${e.linePos?.[0].col ?? 1}: ${e.message.split('\n')[0]}`);
  }
  if (!isSeq(doc.contents)) throw new RenderCliError(`${where(doc.contents)}: expected a YAML list of endpoints`);
  const problems: string[] = [];
  const endpoints: WorkloadEndpoint[] = [];
  doc.contents.items.forEach((item, i) => {
    if (!isMap(item)) {
      problems.push(`${where(item as YamlNode)}: endpoints[${i}]: expected a mapping`);
      return;
    }
    const value = item.toJSON() as Record<string, unknown>;
    const at = (key: string): string => where((item.get(key, true) as YamlNode | undefined) ?? item);
    const requireString = (key: string): void => {
      if (typeof value[key] !== 'string' || value[key] === '') problems.push(`${at(key)}: endpoints[${i}].${key}: required string`);
    };
    requireString('service');
    requireString('address');
    if (!Number.isInteger(value.port) || (value.port as number) < 1 || (value.port as number) > 65535) {
      problems.push(`${at('port')}: endpoints[${i}].port: must be a port number (1-65535)`);
    }
    if (value.labels !== undefined && (typeof value.labels !== 'object' || value.labels === null || Array.isArray(value.labels))) {
      problems.push(`${at('labels')}: endpoints[${i}].labels: must be a map of strings`);
    }
    if (value.tlsMode !== undefined && value.tlsMode !== 'istio' && value.tlsMode !== 'disabled') {
      problems.push(`${at('tlsMode')}: endpoints[${i}].tlsMode: must be istio or disabled`);
    }
    endpoints.push({
      service: String(value.service),
      namespace: typeof value.namespace === 'string' ? value.namespace : 'default',
      address: String(value.address),
      port: Number(value.port),
      labels: Object.fromEntries(Object.entries((value.labels as Record<string, unknown>) ?? {}).map(([k, v]) => [k, String(v)])),
      serviceAccount: typeof value.serviceAccount === 'string' ? value.serviceAccount : undefined,
      workload: typeof value.workload === 'string' ? value.workload : undefined,
      tlsMode: value.tlsMode === 'disabled' ? 'disabled' : 'istio',
    });
  });
  if (problems.length > 0) throw new RenderCliError(problems.join('\n'));
  return endpoints;
}

function plainObject(obj: MeshObject): Record<string, unknown> {
  const { source: _source, fieldSources: _fieldSources, ...rest } = obj;
  return rest as Record<string, unknown>;
}

/** Where the command writes: the process streams from the CLI, buffers in tests. */
export interface RenderIo {
  out(text: string): void;
  err(text: string): void;
}

function format(value: unknown, output: string, multiDoc = false): string {
  if (output === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  if (multiDoc && Array.isArray(value)) {
    return value.map((v) => stringify(v, { aliasDuplicateObjects: false, lineWidth: 0 })).join('---\n');
  }
  return stringify(value, { aliasDuplicateObjects: false, lineWidth: 0 });
}

async function renderCluster(opts: RenderOptions, io: RenderIo): Promise<ClusterRender> {
  const repo = await loadRepositoryFromDir(resolve(opts.repo));
  for (const warning of repo.warnings) io.err(`${formatDiagnostic(warning)}\n`);
  if (repo.errors.length > 0) {
    throw new RenderCliError(
      `${repo.errors.map(formatDiagnostic).join('\n')}\n${repo.errors.length} error(s): the repository does not render; nothing printed`,
    );
  }
  const cluster = repo.clusters.find((c) => c.cluster === opts.cluster);
  if (!cluster) {
    const known = repo.clusters.map((c) => c.cluster).join(', ') || 'none';
    throw new RenderCliError(`unknown cluster "${opts.cluster}" (the Fleet in trellis.yaml lists: ${known})`);
  }
  return cluster;
}

function proxyIdentity(cluster: string, opts: RenderOptions): ProxyIdentity {
  const [namespace, workload, ...rest] = (opts.proxy ?? '').split('/');
  if (!namespace || !workload || rest.length > 0) throw new RenderCliError(`--proxy: "${opts.proxy}" is not NAMESPACE/WORKLOAD`);
  if (opts.mode !== 'sidecar' && opts.mode !== 'gateway') throw new RenderCliError(`--mode: "${opts.mode}" is not sidecar or gateway`);
  const identity: ProxyIdentity = {
    id: `${cluster}/${namespace}/${workload}/0`,
    cluster,
    namespace,
    workload,
    labels: parseLabels(opts.labels),
    serviceAccount: opts.serviceAccount ?? 'default',
    mode: opts.mode as ProxyMode,
  };
  if (opts.service) identity.service = opts.service;
  return identity;
}

async function render(opts: RenderOptions, io: RenderIo): Promise<void> {
  if (opts.output !== 'yaml' && opts.output !== 'json') throw new RenderCliError(`-o: "${opts.output}" is not yaml or json`);
  if (!opts.proxy) {
    for (const flag of ['labels', 'service', 'serviceAccount', 'endpoints'] as const) {
      if (opts[flag] !== undefined) throw new RenderCliError(`--${flag === 'serviceAccount' ? 'service-account' : flag} needs --proxy`);
    }
  }
  const proxyIdentityEarly = opts.proxy ? proxyIdentity(opts.cluster, opts) : undefined;
  const endpoints = opts.endpoints ? await readEndpointsFile(opts.endpoints) : [];
  const cluster = await renderCluster(opts, io);
  if (!proxyIdentityEarly) {
    const objects = [cluster.istioOperator, ...cluster.objects].map(plainObject);
    io.out(format(opts.output === 'json' ? { apiVersion: 'v1', kind: 'List', items: objects } : objects, opts.output, true));
    return;
  }
  io.out(format(buildProxySnapshot({ cluster, endpoints, proxy: proxyIdentityEarly }), opts.output));
}

/**
 * `trellis render`: returns the exit code (0, or 1 when the input is wrong: every message names the
 * file and line, or the flag, at fault; nothing is written to `out` then).
 */
export async function runRender(options: Partial<RenderOptions> & { cluster: string }, io: RenderIo): Promise<number> {
  const opts: RenderOptions = { output: 'yaml', repo: '.', mode: 'sidecar', ...options };
  try {
    await render(opts, io);
    return 0;
  } catch (err) {
    if (!(err instanceof RenderCliError)) throw err;
    io.err(`trellis render: ${err.message}\n`);
    return 1;
  }
}

export function register(program: Command): void {
  program
    .command('render')
    .description("print a cluster's rendered mesh objects, or one proxy's snapshot")
    .requiredOption('--cluster <name>', 'cluster from the Fleet (trellis.yaml)')
    .option('-o, --output <format>', 'yaml | json', 'yaml')
    .option('--repo <dir>', 'the config repository checkout', '.')
    .option('--proxy <namespace/workload>', "render this proxy's snapshot instead")
    .option('--labels <k=v,...>', 'workload labels of the proxy')
    .option('--service <name>', 'short name of the service the proxy backs')
    .option('--service-account <sa>', 'service account of the proxy', undefined)
    .option('--mode <mode>', 'sidecar | gateway', 'sidecar')
    .option('--endpoints <file>', 'YAML list of endpoints (service, namespace, address, port, labels, serviceAccount, tlsMode); default none')
    .action(async (opts: RenderOptions) => {
      const code = await runRender(opts, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
      if (code !== 0) process.exitCode = code;
    });
}
