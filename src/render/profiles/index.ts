import type { IstioOperatorSpec } from '../../mesh/api/index.js';
import { DEFAULT_PROFILE } from './default.js';
import { DEMO_PROFILE } from './demo.js';
import { EMPTY_PROFILE } from './empty.js';
import { deepMerge } from './merge.js';
import { MINIMAL_PROFILE } from './minimal.js';

export { MESH_CONFIG_DEFAULTS } from './mesh-defaults.js';
export { deepMerge } from './merge.js';

export type ProfileName = 'default' | 'demo' | 'minimal' | 'empty';

export interface Profile {
  name: ProfileName;
  description: string;
  /** The profile's own settings; every profile but `default` is an overlay on `default`. */
  overlay: IstioOperatorSpec;
}

const PROFILES: readonly Profile[] = Object.freeze([
  { name: 'default', description: 'production starting point: control plane + ingress gateway, Istio mesh defaults', overlay: DEFAULT_PROFILE },
  { name: 'demo', description: 'default + access logs to stdout, tracing, egress gateway', overlay: DEMO_PROFILE },
  { name: 'minimal', description: 'default without the ingress gateway (control plane only)', overlay: MINIMAL_PROFILE },
  { name: 'empty', description: 'every component off; mesh defaults only', overlay: EMPTY_PROFILE },
]);

export const PROFILE_NAMES: readonly ProfileName[] = PROFILES.map((p) => p.name);

export function listProfiles(): readonly Profile[] {
  return PROFILES;
}

export function isProfileName(name: string): name is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(name);
}

export function getProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}

/** The complete spec a profile stands for: `default`, with the profile's overlay merged on top. */
export function profileSpec(name: ProfileName): IstioOperatorSpec {
  const profile = getProfile(name)!;
  return name === 'default' ? structuredClone(DEFAULT_PROFILE) : deepMerge(DEFAULT_PROFILE, profile.overlay);
}
