/** `major.minor.patch` (a leading `v` and a pre-release suffix are tolerated). */
export interface MeshVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

export function parseMeshVersion(text: string): MeshVersion {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a mesh version (expected MAJOR.MINOR.PATCH, e.g. 1.16.1)`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text };
}

/** Istio's canary (revision) upgrades may jump at most two minors; a downgrade may go back one. */
export const MAX_CANARY_MINOR_SKIP = 2;

/** Why an upgrade from → to is not allowed, or undefined when it is. */
export function upgradeSkewViolation(from: string, to: string): string | undefined {
  const a = parseMeshVersion(from);
  const b = parseMeshVersion(to);
  if (a.major !== b.major) return `cannot move across major versions (${from} → ${to})`;
  const minors = b.minor - a.minor;
  if (minors > MAX_CANARY_MINOR_SKIP) {
    return `${from} → ${to} skips ${minors} minor versions; a canary upgrade may move at most ${MAX_CANARY_MINOR_SKIP} (upgrade to 1.${a.minor + MAX_CANARY_MINOR_SKIP}.x first)`;
  }
  if (minors < -1) return `${from} → ${to} downgrades ${-minors} minor versions; at most one is supported`;
  if (minors === 0 && b.patch === a.patch) return `${to} is the version already in use`;
  return undefined;
}
