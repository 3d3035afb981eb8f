import type { IstioOperatorSpec, MeshConfig } from '../mesh/api/index.js';
import { fieldSource } from '../mesh/load.js';
import type { MeshObject } from '../mesh/object.js';
import { RenderError } from './kustomize/errors.js';
import { deepMerge, getProfile, isProfileName, MESH_CONFIG_DEFAULTS, PROFILE_NAMES, profileSpec, type Profile, type ProfileName } from './profiles/index.js';

/** An IstioOperator after its profile: what the cluster's control plane and proxies really get. */
export interface MergedIstioOperator {
  profile: ProfileName;
  /** The profile's spec with the IstioOperator's spec merged on top; `meshConfig` has every default filled. */
  spec: IstioOperatorSpec;
  /** Same as `spec.meshConfig`, for convenience. */
  meshConfig: MeshConfig;
}

/**
 * Merges an IstioOperator onto its profile (maps merge, lists replace, `null` removes) and fills the
 * MeshConfig defaults for whatever neither sets. Pure; inputs are not modified.
 */
export function mergeIstioOperator(profile: ProfileName | Profile, iop: IstioOperatorSpec | MeshObject<IstioOperatorSpec>): MergedIstioOperator {
  const name = typeof profile === 'string' ? profile : profile.name;
  const overlay = isMeshObject(iop) ? iop.spec ?? {} : iop;
  const { profile: _ignored, ...rest } = overlay;
  void _ignored;
  const spec = deepMerge(profileSpec(name), rest);
  const meshConfig = deepMerge<MeshConfig>(MESH_CONFIG_DEFAULTS as MeshConfig, spec.meshConfig ?? {});
  return { profile: name, spec: { ...spec, profile: name, meshConfig }, meshConfig };
}

/**
 * Reads `spec.profile` (default `default`) and merges. An unknown profile (or a file path, which istioctl
 * would accept but Trellis does not) is a RenderError naming file:line, the object and `spec.profile`.
 */
export function resolveIstioOperator(iop: MeshObject<IstioOperatorSpec>): MergedIstioOperator {
  const requested = iop.spec?.profile ?? 'default';
  if (typeof requested !== 'string' || !isProfileName(requested)) {
    const at = fieldSource(iop, 'spec.profile');
    const ns = iop.metadata?.namespace;
    throw RenderError.at(
      'Profile',
      { ...at, kind: 'IstioOperator', name: ns ? `${ns}/${iop.metadata.name}` : iop.metadata?.name, field: 'spec.profile' },
      `unknown profile ${JSON.stringify(requested)} (Trellis profiles: ${PROFILE_NAMES.join(', ')})`,
    );
  }
  return mergeIstioOperator(getProfile(requested)!, iop);
}

function isMeshObject(value: unknown): value is MeshObject<IstioOperatorSpec> {
  return typeof value === 'object' && value !== null && 'kind' in value && 'spec' in value && 'metadata' in value;
}
