/** security.istio.io schemas (v1 and v1beta1 share one schema). */
import { policyTargetRef, policyTargetRefs, workloadSelector } from './common.js';
import { bool, duration, list, mapOf, obj, oneOfValues, str, strList } from './dsl.js';
import type { Schema } from './dsl.js';

const mtlsMode = oneOfValues('UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT');

export const peerAuthenticationSpec: Schema = obj({
  selector: workloadSelector,
  mtls: obj({ mode: mtlsMode }),
  portLevelMtls: mapOf(obj({ mode: mtlsMode }), { propertyNames: { pattern: '^[0-9]+$' } }),
});

const jwtRule = obj(
  {
    issuer: str,
    audiences: strList,
    jwksUri: str,
    jwks_uri: str,
    jwks: str,
    fromHeaders: list(obj({ name: str, prefix: str }, ['name'])),
    fromParams: strList,
    fromCookies: strList,
    outputPayloadToHeader: str,
    forwardOriginalToken: bool,
    outputClaimToHeaders: list(obj({ header: str, claim: str }, ['header', 'claim'])),
    timeout: duration,
    spaceDelimitedClaims: list(str, { maxItems: 64 }),
    presence: oneOfValues('OPTIONAL', 'REQUIRED'),
  },
);

export const requestAuthenticationSpec: Schema = obj({
  selector: workloadSelector,
  targetRef: policyTargetRef,
  targetRefs: policyTargetRefs,
  jwtRules: list(jwtRule, { maxItems: 4096 }),
});

const source = obj({
  principals: strList,
  notPrincipals: strList,
  requestPrincipals: strList,
  notRequestPrincipals: strList,
  namespaces: strList,
  notNamespaces: strList,
  serviceAccounts: list(str, { maxItems: 16 }),
  notServiceAccounts: list(str, { maxItems: 16 }),
  ipBlocks: strList,
  notIpBlocks: strList,
  remoteIpBlocks: strList,
  notRemoteIpBlocks: strList,
  trustDomains: strList,
  notTrustDomains: strList,
});

const operation = obj({
  hosts: strList,
  notHosts: strList,
  ports: strList,
  notPorts: strList,
  methods: strList,
  notMethods: strList,
  paths: strList,
  notPaths: strList,
});

const rule = obj({
  from: list(obj({ source }), { maxItems: 512 }),
  to: list(obj({ operation })),
  when: list(obj({ key: str, values: strList, notValues: strList }, ['key'])),
});

export const authorizationPolicySpec: Schema = obj({
  selector: workloadSelector,
  targetRef: policyTargetRef,
  targetRefs: policyTargetRefs,
  rules: list(rule, { maxItems: 512 }),
  action: oneOfValues('ALLOW', 'DENY', 'AUDIT', 'CUSTOM'),
  provider: obj({ name: str }),
});
