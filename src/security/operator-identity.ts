import type { WorkloadIdentity } from './identity.js';

/**
 * The operator's own identity on its TLS endpoints (bootstrap, discovery), as istiod's
 * `istiod.istio-system.svc`. Reserved: a join token never buys a certificate for it, so a joined
 * workload cannot pose as the operator to other proxies.
 */
export const OPERATOR_NAMESPACE = 'trellis-system';
export const OPERATOR_SERVICE_ACCOUNT = 'trellis-operator';
export const OPERATOR_DNS_NAME = `${OPERATOR_SERVICE_ACCOUNT}.${OPERATOR_NAMESPACE}.svc`;

export function operatorIdentity(trustDomain: string): WorkloadIdentity {
  return { trustDomain, namespace: OPERATOR_NAMESPACE, serviceAccount: OPERATOR_SERVICE_ACCOUNT };
}

export function isOperatorIdentity(identity: Pick<WorkloadIdentity, 'namespace' | 'serviceAccount'>): boolean {
  return identity.namespace === OPERATOR_NAMESPACE && identity.serviceAccount === OPERATOR_SERVICE_ACCOUNT;
}
