import type { HTTPRetry, MeshConfig } from '../../mesh/api/index.js';
import type { ExtensionProvider, MeshSettings, RetryPolicy } from '../../mesh/snapshot.js';
import { DEFAULT_ROOT_NAMESPACE, DEFAULT_TRUST_DOMAIN, compact, durationMs } from './common.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRY_BACKOFF_MS = 25;

/**
 * Istio's default route retry policy (pilot `retry.DefaultPolicy`): 2 retries on connection-level
 * failures. `retriable-status-codes` carries no codes since istio#52111, so a 503 response is not retried.
 */
export const ISTIO_DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 2,
  retryOn: Object.freeze(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']) as string[],
  retriableStatusCodes: Object.freeze([]) as unknown as number[],
  backoffBaseMs: DEFAULT_RETRY_BACKOFF_MS,
});

export const DISABLED_RETRY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 0,
  retryOn: Object.freeze([]) as unknown as string[],
  retriableStatusCodes: Object.freeze([]) as unknown as number[],
  backoffBaseMs: DEFAULT_RETRY_BACKOFF_MS,
});

/**
 * Istio `retry.ConvertPolicy`: a policy with `attempts` ≤ 0 disables retries; otherwise it starts
 * from the default and overrides attempts, retryOn (bare numbers become retriable status codes and
 * imply `retriable-status-codes`), perTryTimeout and backoff.
 */
export function translateRetry(retry: HTTPRetry): RetryPolicy {
  const attempts = retry.attempts ?? 0;
  if (attempts <= 0) return DISABLED_RETRY as RetryPolicy;
  let retryOn = [...ISTIO_DEFAULT_RETRY.retryOn];
  let retriableStatusCodes: number[] = [];
  if (retry.retryOn) {
    const tokens = retry.retryOn.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
    retryOn = tokens.filter((t) => !/^\d+$/.test(t));
    retriableStatusCodes = tokens.filter((t) => /^\d+$/.test(t)).map(Number);
    if (retriableStatusCodes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn.push('retriable-status-codes');
  }
  return compact({
    attempts,
    perTryTimeoutMs: durationMs(retry.perTryTimeout),
    retryOn,
    retriableStatusCodes,
    backoffBaseMs: durationMs(retry.backoff) ?? DEFAULT_RETRY_BACKOFF_MS,
  });
}

/** The retry policy of routes whose VirtualService has none: meshConfig.defaultHttpRetryPolicy, else Istio's. */
export function translateMeshDefaultRetry(meshConfig: MeshConfig): RetryPolicy {
  const configured = meshConfig.defaultHttpRetryPolicy;
  return configured ? translateRetry(configured) : (ISTIO_DEFAULT_RETRY as RetryPolicy);
}

function translateExtensionProvider(provider: { name: string; [field: string]: unknown }): ExtensionProvider {
  const http = provider.envoyExtAuthzHttp as Record<string, unknown> | undefined;
  if (!http) return { name: provider.name };
  const list = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);
  return {
    name: provider.name,
    envoyExtAuthzHttp: compact({
      service: String(http.service ?? ''),
      port: Number(http.port ?? 0),
      pathPrefix: typeof http.pathPrefix === 'string' ? http.pathPrefix : undefined,
      timeoutMs: durationMs(typeof http.timeout === 'string' ? http.timeout : undefined),
      includeRequestHeadersInCheck: list(http.includeRequestHeadersInCheck),
      headersToUpstreamOnAllow: list(http.headersToUpstreamOnAllow),
      headersToDownstreamOnDeny: list(http.headersToDownstreamOnDeny),
      failOpen: typeof http.failOpen === 'boolean' ? http.failOpen : undefined,
    }),
  };
}

/** Mesh-wide settings every proxy of the cluster shares (a Sidecar may override the outbound policy). */
export function buildMeshSettings(meshConfig: MeshConfig): MeshSettings {
  const mode = meshConfig.outboundTrafficPolicy?.mode;
  return {
    trustDomain: meshConfig.trustDomain || DEFAULT_TRUST_DOMAIN,
    rootNamespace: meshConfig.rootNamespace || DEFAULT_ROOT_NAMESPACE,
    enableAutoMtls: meshConfig.enableAutoMtls ?? true,
    outboundTrafficPolicy: mode === 'REGISTRY_ONLY' ? 'REGISTRY_ONLY' : 'ALLOW_ANY',
    connectTimeoutMs: durationMs(meshConfig.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    defaultRetry: translateMeshDefaultRetry(meshConfig),
    extensionProviders: (meshConfig.extensionProviders ?? [])
      .map(translateExtensionProvider)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}
