import { describe, expect, it } from '@jest/globals';
import { parseDocuments } from '../../src/mesh/load.js';
import type { Diagnostic } from '../../src/mesh/object.js';
import { validateObjects } from '../../src/mesh/validate.js';

function load(text: string, file = 'mesh.yaml') {
  const { objects, diagnostics } = parseDocuments(text, file);
  expect(diagnostics).toEqual([]);
  return objects;
}

const brief = (d: Diagnostic) => `${d.file}:${d.line} ${d.kind} ${d.name} ${d.fieldPath}: ${d.message}`;

const REVIEWS_DR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

describe('cross-object checks', () => {
  it('accepts a consistent set with no findings', () => {
    const objs = load(`${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews.bookinfo.svc.cluster.local, subset: v2}
      weight: 10
`);
    const result = validateObjects(objs);
    expect(result.errors.map(brief)).toEqual([]);
    expect(result.warnings.map(brief)).toEqual([]);
  });

  it('warns on a subset no DestinationRule defines, naming the line', () => {
    const objs = load(`${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v3}
`);
    const { errors, warnings } = validateObjects(objs);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      expect.objectContaining({
        line: 18,
        kind: 'VirtualService',
        name: 'bookinfo/reviews',
        fieldPath: 'spec.http[0].route[0].destination.subset',
        message: 'subset "v3" is not defined by any DestinationRule for host "reviews"',
      }),
    ]);
  });

  it('warns on a host nothing knows; a Service, ServiceEntry or wildcard host makes it known', () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: web}
spec:
  hosts: [front]
  http:
  - match: [{uri: {prefix: /ratings}}]
    route:
    - destination: {host: ratings}
  - route:
    - destination: {host: api.example.com}
`;
    const unknown = validateObjects(load(vs)).warnings.map((w) => w.message);
    expect(unknown).toEqual([
      expect.stringContaining('destination host "ratings" is not known'),
      expect.stringContaining('destination host "api.example.com" is not known'),
    ]);
    const known = load(`${vs}---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: web}
spec: {ports: [{port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: web}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: NONE
`);
    const result = validateObjects(known);
    expect(result.errors.map(brief)).toEqual([]);
    expect(result.warnings.map(brief)).toEqual([]);
  });

  it('short names resolve in the referring namespace', () => {
    const objs = load(`${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: other}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`);
    // "reviews" in namespace other is reviews.other.svc.cluster.local: the bookinfo rule does not apply.
    expect(validateObjects(objs).warnings.map((w) => w.message)).toEqual([
      'subset "v1" is routed to, but no DestinationRule exists for host "reviews"',
    ]);
  });

  it('warns on duplicate DestinationRules for one host', () => {
    const objs = load(`${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-lb, namespace: bookinfo}
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
`, 'dr.yaml');
    const { errors, warnings } = validateObjects(objs);
    expect(errors).toEqual([]);
    expect(warnings.map(brief)).toEqual([
      expect.stringMatching(/^dr.yaml:15 DestinationRule bookinfo\/reviews-lb spec.host: another DestinationRule \(bookinfo\/reviews at dr.yaml:2\) also targets host/),
    ]);
  });

  it('errors on two IstioOperators and on duplicate objects', () => {
    const iop = (name: string) => `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: ${name}, namespace: istio-system}
spec: {profile: default}
`;
    const objs = [...load(iop('a'), 'a.yaml'), ...load(iop('b'), 'b.yaml'), ...load(REVIEWS_DR, 'x.yaml'), ...load(REVIEWS_DR, 'y.yaml')];
    const { errors } = validateObjects(objs);
    expect(errors.map(brief)).toEqual([
      'b.yaml:2 IstioOperator istio-system/b kind: a cluster has exactly one IstioOperator; another is at a.yaml:1',
      'y.yaml:4 DestinationRule bookinfo/reviews metadata.name: duplicate DestinationRule bookinfo/reviews (first defined at x.yaml:2)',
    ]);
  });

  it('errors when spec.tag differs from the versions/<v>/ folder', () => {
    const good = load('apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: cp}\nspec: {tag: 1.16.1}\n', 'versions/1.16.1/istiooperator.yaml');
    expect(validateObjects(good).errors).toEqual([]);
    const bad = load('apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: cp}\nspec: {tag: 1.15.4}\n', 'repo/versions/1.16.1/istiooperator.yaml');
    expect(validateObjects(bad).errors.map((e) => e.message)).toEqual(['spec.tag "1.15.4" must equal its version folder "1.16.1"']);
  });

  it('checks delegates and gateway references', () => {
    const objs = load(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: web}
spec:
  hosts: [shop.example.com]
  gateways: [edge, mesh]
  http:
  - match: [{uri: {prefix: /cart}}]
    delegate: {name: cart}
  - match: [{uri: {prefix: /pay}}]
    delegate: {name: pay, namespace: payments}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: web}
spec:
  hosts: [cart]
  http:
  - route:
    - destination: {host: cart}
`);
    const { errors, warnings } = validateObjects(objs);
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining('delegate VirtualService web/cart must have no hosts')]);
    expect(warnings.map((w) => w.message)).toEqual([
      'gateway web/edge is not in this configuration',
      'delegate VirtualService payments/pay is not in this configuration',
    ]);
  });

  it('warns on a selector PeerAuthentication in the root namespace', () => {
    const objs = load(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {matchLabels: {app: ingress}}
  mtls: {mode: STRICT}
`);
    expect(validateObjects(objs).warnings.map((w) => w.message)).toEqual([expect.stringContaining('root namespace istio-system is ignored')]);
  });

  it('collects every finding instead of stopping at the first', () => {
    const objs = load(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: many, namespace: default}
spec:
  hosts: [many]
  http:
  - timeout: 1x
    route:
    - destination: {host: many}
      weight: -1
    - destination: {host: many}
      weight: 0
  - match: [{headers: {X-A: {regex: "(?!a)"}}}]
    redirect: {uri: /b}
    route: [{destination: {host: many}}]
`);
    const { errors } = validateObjects(objs);
    expect(errors.map((e) => e.fieldPath)).toEqual([
      'spec.http[0].timeout',
      'spec.http[0].route',
      'spec.http[0].route[0].weight',
      'spec.http[1].match[0].headers.X-A',
      'spec.http[1].match[0].headers.X-A.regex',
      'spec.http[1].redirect',
    ]);
  });

  it('warns on a second namespace-wide PeerAuthentication, Telemetry or Sidecar', () => {
    const pa = (name: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
`;
    const objs = [...load(pa('one'), 'a.yaml'), ...load(pa('two'), 'b.yaml')];
    const { errors, warnings } = validateObjects(objs);
    expect(errors).toEqual([]);
    expect(warnings.map(brief)).toEqual([
      'b.yaml:4 PeerAuthentication bookinfo/two spec: namespace bookinfo already has a PeerAuthentication without a selector (bookinfo/one at a.yaml:1); Istio applies only one of them',
    ]);
    const selected = load(pa('three').replace('spec: {mtls', 'spec: {selector: {matchLabels: {app: x}}, mtls'), 'c.yaml');
    expect(validateObjects([...objs.slice(0, 1), ...selected]).warnings).toEqual([]);
  });

  it('names an unnamed IstioOperator "(unnamed)" in findings', () => {
    const objs = load('apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {namespace: istio-system}\nspec: {profil: demo}\n');
    expect(validateObjects(objs).errors.map(brief)).toEqual(['mesh.yaml:4 IstioOperator istio-system/(unnamed) spec.profil: unknown field "profil"']);
  });
});
