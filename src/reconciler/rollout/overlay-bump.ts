import { Document, isMap, isScalar, isSeq, parseDocument } from 'yaml';

/**
 * Points a kustomization at another `versions/<v>` folder, editing only that one reference so the
 * rest of the file (comments, order, patches) is unchanged in the commit diff.
 * Returns the new text and whether anything changed.
 */
export function bumpOverlayVersion(kustomizationText: string, from: string, to: string): { text: string; changed: boolean } {
  const doc: Document = parseDocument(kustomizationText);
  const resources = isMap(doc.contents) ? doc.contents.get('resources', true) : undefined;
  let changed = false;
  if (isSeq(resources)) {
    for (const item of resources.items) {
      if (isScalar(item) && typeof item.value === 'string') {
        const replaced = item.value.replace(new RegExp(`(^|/)versions/${escapeRegExp(from)}(/|$)`), `$1versions/${to}$2`);
        if (replaced !== item.value) {
          item.value = replaced;
          changed = true;
        }
      }
    }
  }
  return { text: changed ? doc.toString() : kustomizationText, changed };
}

/** The `versions/<v>` folder a kustomization's resources reference, if exactly one. */
export function referencedVersion(kustomizationText: string): string | undefined {
  const doc = parseDocument(kustomizationText);
  const resources = isMap(doc.contents) ? doc.contents.get('resources', true) : undefined;
  if (!isSeq(resources)) return undefined;
  const found = new Set<string>();
  for (const item of resources.items) {
    if (isScalar(item) && typeof item.value === 'string') {
      const m = /(?:^|\/)versions\/([^/]+)\/?$/.exec(item.value);
      if (m) found.add(m[1]);
    }
  }
  return found.size === 1 ? [...found][0] : undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
