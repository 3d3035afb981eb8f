import { existsSync } from 'node:fs';
import { ApiException, KubeConfig } from '@kubernetes/client-node';

/**
 * A KubeConfig from `--kubeconfig FILE`, or in-cluster (service account) when running in a pod,
 * or the default chain ($KUBECONFIG, ~/.kube/config).
 */
export function loadKubeConfig(kubeconfig?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig && kubeconfig !== 'in-cluster') {
    if (!existsSync(kubeconfig)) throw new Error(`kubeconfig ${kubeconfig} not found`);
    kc.loadFromFile(kubeconfig);
  } else if (kubeconfig === 'in-cluster' || process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** Namespace of the kubeconfig's current context, or of the pod, or `fallback`. */
export function defaultNamespace(kc: KubeConfig, fallback: string): string {
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? fallback;
}

/** HTTP status code of a client-node error (ApiException), if any. */
export function kubeErrorCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A short, credential-free message for a client-node error: the Status object's message when sent. */
export function kubeErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not JSON
      }
    }
    const msg = (body as { message?: unknown } | null)?.message;
    return `HTTP ${err.code}: ${typeof msg === 'string' ? msg : String(err.body).slice(0, 200)}`;
  }
  return err instanceof Error ? err.message : String(err);
}
