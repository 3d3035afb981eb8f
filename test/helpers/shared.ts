import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from '@jest/globals';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Istio's own fixtures (Apache-2.0) live in ../shared/istio beside the clone; a user's clone has none. */
export const SHARED_ISTIO = resolve(PROJECT_ROOT, '..', 'shared', 'istio');
export const HAS_SHARED = existsSync(join(SHARED_ISTIO, 'README.md'));

/** `describe` when ../shared/istio is present; otherwise a skipped block whose title says why. */
export const describeWithIstioFixtures: typeof describe = HAS_SHARED
  ? describe
  : (((name: string, fn: () => void) =>
      describe.skip(`${name} [skipped: ../shared/istio is absent; CI provides it]`, fn)) as unknown as typeof describe);
