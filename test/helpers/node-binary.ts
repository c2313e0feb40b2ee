// Node binaries from the npm registry (scripts/fetch-node.sh, as scripts/arm64-check.sh uses it for arm64).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FETCH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'fetch-node.sh');

/** The Node 24 the tests run besides this one (relaxed SIMD, a fresh install). */
export const NODE_24 = '24.21.0';

/** Node `version` for x64, fetched once into .cache/x64/; null if npm cannot fetch it (offline). */
export function nodeFromNpm(version: string): string | null {
  const fetched = spawnSync(FETCH, ['x64', version], { encoding: 'utf8' });
  return fetched.status === 0 ? fetched.stdout.trim() : null;
}
