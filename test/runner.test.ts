// The test runner (test/runner.ts) on fixture suites, in a child process: a throwing before hook
// fails the run (uvu alone exits 0), skipped tests are named, and the last line counts all three.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join('test', 'fixtures', 'runner');

function runner(pattern: string): { status: number | null; lines: string[] } {
  const child = spawnSync(process.execPath, ['--import', 'tsx', join('test', 'runner.ts'), FIXTURES, pattern], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  return { status: child.status, lines: (child.stdout + child.stderr).trim().split('\n') };
}

test('a before hook that throws fails the run, and its error is printed', () => {
  const { status, lines } = runner('before-throws');
  assert.is(status, 1);
  assert.ok(
    lines.some((l) => l.includes('FAIL') && l.includes('2 of 2 tests did not run')),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => l.includes('the fixture before hook broke')),
    lines.join('\n'),
  );
  assert.is(lines.at(-1), '0 passed, 2 failed, 0 skipped');
});

test('skipped tests are named and counted in the last line; a passing run exits 0', () => {
  const { status, lines } = runner('passes');
  assert.is(status, 0, lines.join('\n'));
  assert.ok(lines.includes('  passes.fixture.ts: needs something absent'), lines.join('\n'));
  assert.is(lines.at(-1), '1 passed, 0 failed, 1 skipped');
});

test('both together: the failure is counted beside the passes', () => {
  const { status, lines } = runner('fixture');
  assert.is(status, 1);
  assert.is(lines.at(-1), '1 passed, 2 failed, 1 skipped');
});

test.run();
