import { parseDocument } from 'yaml';
import type { FileChanges } from '../reconciler/rollout/index.js';

/**
 * The demo's bad release: 1.16.2 ships a namespace-wide Sidecar that scopes egress to the
 * services its author remembered — and forgot reviews and ratings. With REGISTRY_ONLY (inherited
 * from 1.16.1) every call a canary proxy makes to them fails with 502 NR. A real, easy mistake.
 */
export const BAD_SIDECAR = `# 1.16.2: scope sidecar egress to what bookinfo calls (reviews and ratings were forgotten)
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: bookinfo
spec:
  egress:
  - hosts:
    - "./productpage.bookinfo.svc.cluster.local"
    - "./details.bookinfo.svc.cluster.local"
    - "istio-system/*"
`;

/** Adds the bad Sidecar to an upgrade plan from 1.16.1 (whose mesh/ folder lists its resources). */
export function addBadSidecar(changes: FileChanges, version: string): FileChanges {
  const kustomizationPath = `versions/${version}/mesh/kustomization.yaml`;
  const text = changes.get(kustomizationPath);
  if (!text) throw new Error(`${kustomizationPath} is not part of the upgrade plan`);
  const doc = parseDocument(text);
  const resources = doc.get('resources') as { add?: (v: unknown) => void } | undefined;
  if (!resources?.add) throw new Error(`${kustomizationPath} has no resources list`);
  resources.add('sidecar.yaml');
  const out = new Map(changes);
  out.set(kustomizationPath, doc.toString());
  out.set(`versions/${version}/mesh/sidecar.yaml`, BAD_SIDECAR);
  return out;
}
