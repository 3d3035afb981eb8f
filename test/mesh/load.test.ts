import { describe, expect, it } from '@jest/globals';
import { fieldSource, MAX_FILE_BYTES, parseDocuments } from '../../src/mesh/load.js';
import { DurationError, isValidDuration, parseDuration } from '../../src/mesh/duration.js';

const VS = `# leading comment
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 75
    - destination:
        host: reviews
        subset: v2
      weight: 25
---
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
`;

describe('parseDocuments', () => {
  it('loads documents with positions and skips empty ones', () => {
    const { objects, diagnostics } = parseDocuments(VS, 'mesh.yaml');
    expect(diagnostics).toEqual([]);
    expect(objects.map((o) => o.kind)).toEqual(['VirtualService', 'DestinationRule']);
    const [vs, dr] = objects;
    expect(vs.source).toEqual({ file: 'mesh.yaml', line: 3, col: 1 });
    expect(dr.source?.line).toBe(20);
    expect(vs.fieldSources?.['spec.http[0].route[1].weight']).toEqual({ file: 'mesh.yaml', line: 17, col: 7 });
    expect(vs.fieldSources?.['spec.http[0].route[0].destination.subset']?.line).toBe(12);
    expect(fieldSource(vs, 'spec.http[0].route[1].destination.port.number').line).toBe(14);
    expect(fieldSource(vs, 'nothing.here').line).toBe(3);
  });

  it('quotes keys that are not identifiers', () => {
    const { objects } = parseDocuments('apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels:\n    app.kubernetes.io/name: a\n', 'f.yaml');
    expect(objects[0].fieldSources?.['metadata.labels["app.kubernetes.io/name"]']?.line).toBe(6);
  });

  it('keeps unknown top-level fields for validation', () => {
    const { objects } = parseDocuments('apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspecs: {}\n', 'f.yaml');
    expect(objects[0].extraFields).toEqual({ specs: {} });
  });

  it('refuses the whole file on a duplicate key', () => {
    const { objects, diagnostics } = parseDocuments(`${VS}---\na: 1\na: 2\n`, 'dup.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics[0]).toMatchObject({ severity: 'error', file: 'dup.yaml', line: 27 });
    expect(diagnostics[0].message).toMatch(/duplicate key/);
  });

  it('refuses an alias bomb before expanding it', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      lines.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const { objects, diagnostics } = parseDocuments(lines.join('\n'), 'bomb.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics[0].message).toMatch(/alias/);
  });

  it('refuses an oversize file', () => {
    const { objects, diagnostics } = parseDocuments('#'.repeat(MAX_FILE_BYTES + 1), 'big.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics[0].message).toMatch(/over the limit of 4194304 bytes/);
  });

  it('refuses non-mapping documents and missing names', () => {
    expect(parseDocuments('- a\n- b\n', 'x.yaml').diagnostics[0].message).toMatch(/not a mapping/);
    const missing = parseDocuments('apiVersion: v1\nkind: Service\nmetadata:\n  namespace: x\n', 'x.yaml');
    expect(missing.diagnostics[0]).toMatchObject({ line: 3, message: expect.stringMatching(/metadata.name/) });
  });
});

describe('parseDuration', () => {
  it.each([
    ['1.5s', 1500],
    ['100ms', 100],
    ['1h', 3_600_000],
    ['0s', 0],
    ['0', 0],
    ['1h30m', 5_400_000],
    ['250us', 0.25],
  ])('%s = %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each(['', '5', 's', '1.5', '-1s', '1d', '1 s', '1s ', 'abc'])('rejects %j', (input) => {
    expect(() => parseDuration(input)).toThrow(DurationError);
    expect(isValidDuration(input)).toBe(false);
  });
});

describe('parseDocuments: YAML features Kubernetes tooling accepts', () => {
  it('resolves merge keys', () => {
    const text = 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  base: &b {x: 1, y: 2}\n  copy:\n    <<: *b\n    y: 3\n';
    const { objects, diagnostics } = parseDocuments(text, 'm.yaml');
    expect(diagnostics).toEqual([]);
    expect(objects[0].spec).toEqual({ base: { x: 1, y: 2 }, copy: { x: 1, y: 3 } });
  });
});

describe('parseDocuments: duplicate keys in large mappings', () => {
  it('finds a duplicate far from its first occurrence and names its line', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `  k${i}: v`);
    keys.push('  k0: again');
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n${keys.join('\n')}\n`;
    const { objects, diagnostics } = parseDocuments(text, 'keys.yaml');
    expect(objects).toEqual([]);
    expect(diagnostics).toEqual([expect.objectContaining({ line: 5005, message: 'duplicate key: "k0" appears twice in one mapping' })]);
  });
});
