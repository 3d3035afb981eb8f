import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from '@jest/globals';
import { formatDiagnostic } from '../../src/mesh/object.js';
import { lookupKind } from '../../src/mesh/kinds.js';
import { parseDocuments } from '../../src/mesh/load.js';
import { validateObject, validateObjects, validateObjectSchema } from '../../src/mesh/validate.js';
import { describeWithIstioFixtures, SHARED_ISTIO } from '../helpers/shared.js';

/**
 * Istio's own fixtures must load unchanged. The validation dataset holds only valid examples (its
 * README: "valid examples of every Istio kind and apiVersion"; no document carries an invalid marker),
 * so every in-scope document must pass and every out-of-scope one must warn "not supported".
 */
const DIRS = ['validation-dataset', 'bookinfo-networking', 'profiles'];

function files(): Array<[string, string]> {
  return DIRS.flatMap((dir) =>
    readdirSync(join(SHARED_ISTIO, dir))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f): [string, string] => [`${dir}/${f}`, join(SHARED_ISTIO, dir, f)]),
  );
}

describeWithIstioFixtures('Istio fixtures are accepted', () => {
  it('covers every in-scope kind and the served versions', () => {
    const seen = new Set<string>();
    for (const [name, path] of files()) {
      for (const obj of parseDocuments(readFileSync(path, 'utf8'), name).objects) seen.add(`${obj.apiVersion} ${obj.kind}`);
    }
    for (const expected of [
      'networking.istio.io/v1 VirtualService',
      'networking.istio.io/v1alpha3 VirtualService',
      'networking.istio.io/v1beta1 DestinationRule',
      'security.istio.io/v1beta1 AuthorizationPolicy',
      'telemetry.istio.io/v1alpha1 Telemetry',
      'install.istio.io/v1alpha1 IstioOperator',
    ]) {
      expect(seen).toContain(expected);
    }
  });

  for (const [name, path] of files()) {
    it(name, () => {
      const { objects, diagnostics } = parseDocuments(readFileSync(path, 'utf8'), name);
      expect(diagnostics.map(formatDiagnostic)).toEqual([]);
      expect(objects.length).toBeGreaterThan(0);
      for (const obj of objects) {
        const full = validateObject(obj);
        const schemaOnly = validateObjectSchema(obj);
        expect(full.errors.map(formatDiagnostic)).toEqual([]);
        expect(schemaOnly.errors.map(formatDiagnostic)).toEqual([]);
        if (lookupKind(obj.apiVersion, obj.kind).status === 'unsupported') {
          expect(full.warnings.map((w) => w.message)).toEqual([expect.stringContaining('not supported by Trellis: not applied')]);
        } else {
          // Istio's own samples may draw Istio's own reachability warnings (e.g. bookinfo's
          // fault-injection-details-v1 has two catch-all rules); nothing else may warn.
          // Valid Istio the HTTP-only data plane does not serve (tcp/tls routes, gRPC aborts) warns "not applied".
          expect(full.warnings.filter((w) => !/is never used|data plane \(HTTP.*: not applied/.test(w.message)).map(formatDiagnostic)).toEqual([]);
        }
      }
      // Cross-object checks over the file: warnings are allowed (e.g. hosts no Service backs), errors are not.
      expect(validateObjects(objects).errors.map(formatDiagnostic)).toEqual([]);
    });
  }
});
