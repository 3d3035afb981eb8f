import { list, obj, str, strMap, uint32 } from './dsl.js';
import type { Schema } from './dsl.js';

/** StringMatch: exact | prefix | regex. At most one is enforced semantically; `{}` means presence in header matches. */
export const stringMatch: Schema = obj({ exact: str, prefix: str, regex: str });

export const workloadSelector: Schema = obj({ matchLabels: strMap });

export const policyTargetRef: Schema = obj({ group: str, kind: str, name: str, namespace: str }, ['kind', 'name']);
export const policyTargetRefs: Schema = list(policyTargetRef, { maxItems: 16 });

export const percentValue: Schema = obj({ value: { type: 'number' } });

export const portSelector: Schema = obj({ number: uint32 });

export const destination: Schema = obj({ host: str, subset: str, port: portSelector }, ['host']);
