import { isMap, parseDocument } from 'yaml';

/** Annotation on the Fleet that aborts the rollout of one version everywhere it is in progress. */
export const ABORT_ANNOTATION = 'trellis.dev/abort';

/** Sets or clears `spec.suspend` in trellis.yaml, keeping the rest of the file as written. */
export function setFleetSuspended(text: string, suspended: boolean): string {
  const doc = parseDocument(text);
  const spec = isMap(doc.contents) ? doc.contents.get('spec', true) : undefined;
  if (!isMap(spec)) throw new Error('trellis.yaml: the Fleet has no spec');
  if (suspended) spec.set('suspend', true);
  else spec.delete('suspend');
  return doc.toString();
}

/** Records (or clears, with `undefined`) the abort marker for a version. */
export function setFleetAbort(text: string, version: string | undefined): string {
  const doc = parseDocument(text);
  if (version === undefined) {
    doc.deleteIn(['metadata', 'annotations', ABORT_ANNOTATION]);
    const annotations = doc.getIn(['metadata', 'annotations'], true);
    if (isMap(annotations) && annotations.items.length === 0) doc.deleteIn(['metadata', 'annotations']);
  } else {
    doc.setIn(['metadata', 'annotations', ABORT_ANNOTATION], version);
  }
  return doc.toString();
}
