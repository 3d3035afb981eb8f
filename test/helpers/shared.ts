import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from '@jest/globals';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Istio's own fixtures (Apache-2.0) live in ../shared/istio beside the clone; a user's clone has none. */
export const SHARED_ISTIO = resolve(PROJECT_ROOT, '..', 'shared', 'istio');
export const HAS_SHARED = existsSync(join(SHARED_ISTIO, 'README.md'));

/**
 * `describe` when ../shared/istio is present; otherwise a block with one skipped test whose title
 * says why. The body is not run at all then: it may read the fixtures while collecting tests.
 */
export const describeWithIstioFixtures: typeof describe = HAS_SHARED
  ? describe
  : (((name: string) =>
      describe(name, () => {
        it.skip('skipped: ../shared/istio is absent (a user clone); CI provides it', () => undefined);
      })) as unknown as typeof describe);
