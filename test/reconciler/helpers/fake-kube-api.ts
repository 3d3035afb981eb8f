import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { PROJECT_ROOT } from '../../helpers/shared.js';

/**
 * A small in-test Kubernetes API server (there is no real one on these machines), over real TLS,
 * answering with the real request/response shapes: /version, discovery (/api, /apis,
 * APIResourceList), custom objects with resourceVersion and the status subresource, Leases,
 * `Status` errors and `meta.k8s.io/v1` Table responses built from the CRD's printer columns
 * (read from deploy/crd-clusterstatus.yaml, so the test checks the real manifest).
 */

const execFileP = promisify(execFile);

interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
}

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

export interface FakeKubeApi {
  url: string;
  /** Path of a kubeconfig (CA-verified TLS, bearer token) for client-node and kubectl. */
  kubeconfigPath: string;
  token: string;
  requests: Array<{ method: string; path: string; accept?: string; contentType?: string }>;
  /** The next `n` PUTs/PATCHes answer 409 Conflict (as if another writer got in first). */
  conflictNextPuts(n: number): void;
  get(resource: 'clusterstatuses' | 'leases', namespace: string, name: string): Obj | undefined;
  close(): Promise<void>;
}

export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-kube-'));
  await execFileP('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=fake-kube-apiserver',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ]);
  const [key, cert] = await Promise.all([readFile(join(dir, 'key.pem')), readFile(join(dir, 'cert.pem'))]);
  const crd = parseYaml(await readFile(join(PROJECT_ROOT, 'deploy', 'crd-clusterstatus.yaml'), 'utf8')) as {
    spec: { names: { plural: string; singular: string; kind: string; shortNames?: string[]; categories?: string[] }; versions: Array<{ name: string; additionalPrinterColumns: PrinterColumn[] }> };
  };
  const columns = crd.spec.versions[0]!.additionalPrinterColumns;
  const token = `test-token-${randomUUID()}`;
  const store = new Map<string, Obj>();
  let rv = 100;
  let conflicts = 0;
  const requests: FakeKubeApi['requests'] = [];

  const status = (res: ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void => {
    send(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code });
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://x');
    const path = url.pathname;
    requests.push({ method: req.method ?? 'GET', path: `${path}${url.search}`, accept: req.headers.accept, contentType: req.headers['content-type'] });
    if (req.headers.authorization !== `Bearer ${token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    const body = await readJson(req);

    if (path === '/version') return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-trellis-fake', platform: 'linux/amd64' });
    if (path === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port()}` }] });
    if (path === '/apis') {
      const group = (name: string, version: string) => ({ name, versions: [{ groupVersion: `${name}/${version}`, version }], preferredVersion: { groupVersion: `${name}/${version}`, version } });
      return send(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [group('coordination.k8s.io', 'v1'), group('trellis.dev', 'v1alpha1')] });
    }
    if (path === '/api/v1') {
      return send(res, 200, { kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'], shortNames: ['ns'] }] });
    }
    if (path === '/apis/trellis.dev/v1alpha1') {
      const n = crd.spec.names;
      return send(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: 'trellis.dev/v1alpha1',
        resources: [
          { name: n.plural, singularName: n.singular, namespaced: true, kind: n.kind, verbs: ['delete', 'get', 'list', 'patch', 'create', 'update', 'watch'], shortNames: n.shortNames, categories: n.categories, storageVersionHash: 'abc' },
          { name: `${n.plural}/status`, singularName: '', namespaced: true, kind: n.kind, verbs: ['get', 'patch', 'update'] },
        ],
      });
    }
    if (path === '/apis/coordination.k8s.io/v1') {
      return send(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'coordination.k8s.io/v1', resources: [{ name: 'leases', singularName: 'lease', namespaced: true, kind: 'Lease', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] }] });
    }

    const m = /^\/apis\/(trellis\.dev\/v1alpha1|coordination\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(clusterstatuses|leases)(?:\/([^/]+))?(?:\/(status))?$/.exec(path);
    if (!m) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const [, gv, ns, resource, name, sub] = m as unknown as [string, string, string, string, string | undefined, string | undefined];
    const kind = resource === 'leases' ? 'Lease' : 'ClusterStatus';
    const group = gv.split('/')[0];
    const key = (n: string) => `${resource}/${ns}/${n}`;

    if (req.method === 'GET' && !name) {
      const items = [...store.entries()].filter(([k]) => k.startsWith(`${resource}/${ns}/`)).map(([, v]) => v);
      if (/as=Table/.test(req.headers.accept ?? '') && resource === 'clusterstatuses') {
        return send(res, 200, toTable(items, columns, String(rv), url.searchParams.get('includeObject')));
      }
      return send(res, 200, { apiVersion: gv, kind: `${kind}List`, metadata: { resourceVersion: String(rv) }, items });
    }
    if (!name && req.method === 'POST') {
      const obj = body as Obj;
      const objName = String(obj?.metadata?.name ?? '');
      if (store.has(key(objName))) return status(res, 409, 'AlreadyExists', `${resource}.${group} "${objName}" already exists`, { name: objName, group, kind: resource });
      const created: Obj = {
        ...obj,
        metadata: { ...obj.metadata, namespace: ns, uid: randomUUID(), resourceVersion: String(++rv), generation: 1, creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
      };
      if (resource === 'clusterstatuses') delete created.status; // status subresource: ignored on create
      store.set(key(objName), created);
      return send(res, 201, created);
    }
    if (!name) return status(res, 405, 'MethodNotAllowed', 'method not allowed');
    const current = store.get(key(name));
    if (req.method === 'GET') {
      if (!current) return status(res, 404, 'NotFound', `${resource}.${group} "${name}" not found`, { name, group, kind: resource });
      return send(res, 200, current);
    }
    if (req.method === 'PUT') {
      if (!current) return status(res, 404, 'NotFound', `${resource}.${group} "${name}" not found`, { name, group, kind: resource });
      const obj = body as Obj;
      if (conflicts > 0 || String(obj?.metadata?.resourceVersion ?? '') !== current.metadata.resourceVersion) {
        if (conflicts > 0) conflicts -= 1;
        return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${resource}.${group} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group, kind: resource });
      }
      const next: Obj =
        sub === 'status'
          ? { ...current, status: obj.status, metadata: { ...current.metadata, resourceVersion: String(++rv) } }
          : { ...obj, ...(resource === 'clusterstatuses' ? { status: current.status } : {}), metadata: { ...current.metadata, ...obj.metadata, resourceVersion: String(++rv) } };
      store.set(key(name), next);
      return send(res, 200, next);
    }
    if (req.method === 'DELETE') {
      if (!current) return status(res, 404, 'NotFound', `${resource}.${group} "${name}" not found`, { name, group, kind: resource });
      store.delete(key(name));
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group, kind: resource, uid: current.metadata.uid } });
    }
    if (req.method === 'PATCH') {
      if (!current) return status(res, 404, 'NotFound', `${resource}.${group} "${name}" not found`, { name, group, kind: resource });
      if (req.headers['content-type'] !== 'application/merge-patch+json') {
        return status(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (this fake)`);
      }
      const patch = body as Obj;
      const precondition = patch?.metadata?.resourceVersion;
      if (conflicts > 0 || (precondition !== undefined && String(precondition) !== current.metadata.resourceVersion)) {
        if (conflicts > 0) conflicts -= 1;
        return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${resource}.${group} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group, kind: resource });
      }
      const merged = applyMergePatch(current, sub === 'status' ? { status: (patch as { status?: unknown }).status } : { ...patch, status: undefined }) as Obj;
      const next: Obj = { ...merged, metadata: { ...current.metadata, resourceVersion: String(++rv) } };
      store.set(key(name), next);
      return send(res, 200, next);
    }
    return status(res, 405, 'MethodNotAllowed', `${req.method} not supported here`);
  };

  const server: Server = createServer({ key, cert }, (req, res) => {
    handler(req, res).catch((err: unknown) => status(res, 500, 'InternalError', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = () => (server.address() as AddressInfo).port;
  const url = `https://127.0.0.1:${port()}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeFile(
    kubeconfigPath,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: ${url}`,
      `    certificate-authority-data: ${cert.toString('base64')}`,
      'users:',
      '- name: operator',
      '  user:',
      `    token: ${token}`,
      'contexts:',
      '- name: fake',
      '  context: {cluster: fake, user: operator, namespace: trellis-system}',
      'current-context: fake',
      '',
    ].join('\n'),
  );

  return {
    url,
    kubeconfigPath,
    token,
    requests,
    conflictNextPuts: (n) => {
      conflicts = n;
    },
    get: (resource, ns, name) => store.get(`${resource}/${ns}/${name}`),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (!chunks.length) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Evaluates a simple `.a.b.c` printer-column jsonPath. */
function lookup(obj: unknown, jsonPath: string): unknown {
  let cur: unknown = obj;
  for (const part of jsonPath.replace(/^\./, '').split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** The API server formats `date` columns as a relative age (like `translateTimestampSince`). */
function age(ts: unknown): string {
  if (typeof ts !== 'string') return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 3600 * 2) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

function toTable(items: Obj[], columns: PrinterColumn[], resourceVersion: string, includeObject: string | null): unknown {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
      ...columns.map((c) => ({ name: c.name, type: c.type, format: '', description: c.description ?? '', priority: 0 })),
    ],
    rows: items.map((item) => ({
      cells: [
        item.metadata.name,
        ...columns.map((c) => {
          const v = lookup(item, c.jsonPath);
          if (c.type === 'date') return age(v);
          return v === undefined ? null : v;
        }),
      ],
      object:
        includeObject === 'Object'
          ? item
          : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: item.metadata },
    })),
  };
}

/** RFC 7386 JSON merge patch, as the API server applies `application/merge-patch+json`. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}
