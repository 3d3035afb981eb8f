import { expect, it } from '@jest/globals';
import { parseDocuments } from '../../src/mesh/load.js';
import type { Diagnostic } from '../../src/mesh/object.js';
import { validateObjects } from '../../src/mesh/validate.js';

const brief = (d: Diagnostic) => `${d.file}:${d.line} ${d.kind} ${d.name} ${d.fieldPath}: ${d.message}`;

function warningsOf(text: string): string[] {
  const { objects, diagnostics } = parseDocuments(text, 'routes.yaml');
  expect(diagnostics).toEqual([]);
  const result = validateObjects(objects);
  expect(result.errors.map(brief)).toEqual([]);
  return result.warnings.map(brief);
}

it('valid Istio the HTTP-only data plane cannot serve warns "not applied" at its field, never silently', () => {
  const warnings = warningsOf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: mongo
  namespace: db
spec:
  hosts:
  - mongo.db.svc.cluster.local
  tcp:
  - match:
    - port: 27017
    route:
    - destination:
        host: mongo.db.svc.cluster.local
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: grpc-faults
  namespace: db
spec:
  hosts:
  - ratings.db.svc.cluster.local
  http:
  - fault:
      abort:
        grpcStatus: UNAVAILABLE
        percentage:
          value: 10
    route:
    - destination:
        host: ratings.db.svc.cluster.local
`);
  expect(warnings).toContain('routes.yaml:9 VirtualService db/mongo spec.tcp: tcp routes are not supported by the Trellis data plane (HTTP only): not applied');
  expect(warnings).toContain(
    'routes.yaml:27 VirtualService db/grpc-faults spec.http[0].fault.abort.grpcStatus: gRPC status aborts are not supported by the Trellis data plane (HTTP/1.1 only): not applied',
  );
});

it('plain HTTP routes draw no such warning', () => {
  const warnings = warningsOf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: web
  namespace: db
spec:
  hosts:
  - web.db.svc.cluster.local
  http:
  - route:
    - destination:
        host: web.db.svc.cluster.local
`);
  expect(warnings.filter((w) => /not applied/.test(w))).toEqual([]);
});
