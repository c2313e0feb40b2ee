// The oracle that serve's tests compare the server's answers with: the CLI on the same photos.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import type { ClassifyResult } from '../../src/serve/protocol.ts';
import { REPO_PHOTOS } from './photos.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What `resnet-wasm classify --json` prints for these photos of test/photos/, one result each. */
export function classifyCli(...files: string[]): ClassifyResult[] {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'classify', '--json', ...files.map((f) => join(REPO_PHOTOS, f))],
    { encoding: 'utf8' },
  );
  assert.is(run.status, 0, run.stderr);
  return run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}
