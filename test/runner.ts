// The test runner: uvu's own (`uvu [dir] [pattern]`), plus what uvu leaves out.
// - uvu runs a suite's `test.before` hooks inside a try whose `finally` returns, which swallows the
//   hook's error: the suite's tests never run, nothing is printed and the run exits 0. Here such a
//   suite fails, with the hook's error printed.
// - uvu counts skipped tests but does not name them: here they are listed at the end.
// - The last line is `N passed, N failed, N skipped`; the exit code is 1 when any test failed.
// Usage: node --import tsx test/runner.ts [dir] [pattern]   (default: test \.test\.ts$)
import { pathToFileURL } from 'node:url';
import type { Callback } from 'uvu';
import { parse } from 'uvu/parse';

type Result = [errors: string | true, passed: number, skipped: number, total: number];
type Runner = () => Promise<Result>;

const [dir = 'test', pattern = '\\.test\\.ts$'] = process.argv.slice(2);
const { suites } = await parse(dir, pattern);

const uvuGlobals = globalThis as unknown as {
  UVU_DEFER: number;
  UVU_INDEX: number;
  UVU_QUEUE: [string, ...Runner[]][];
};
uvuGlobals.UVU_DEFER = 1;
const uvu = await import('uvu');

let hookErrors: unknown[] = [];
const skippedNames: string[] = [];
let registering = '';
guardBeforeHooks(uvu.test);
nameSkippedTests(uvu.test);

for (const [index, suite] of suites.entries()) {
  uvuGlobals.UVU_INDEX = index;
  uvuGlobals.UVU_QUEUE.push([suite.name]);
  registering = suite.name;
  await import(pathToFileURL(suite.file).href);
}

const counts = { passed: 0, failed: 0, skipped: 0 };
for (const group of uvuGlobals.UVU_QUEUE) {
  for (let i = 1; i < group.length; i++) group[i] = countAndFailSwallowedHooks(group[i] as Runner, group[0]);
}
await uvu.exec();

if (skippedNames.length > 0) console.log(`Skipped:\n${skippedNames.map((name) => `  ${name}`).join('\n')}`);
console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
process.exitCode = counts.failed > 0 ? 1 : 0;

/** Records what a `test.before` hook throws (uvu would drop it), then throws it on. */
function guardBeforeHooks(test: typeof uvu.test): void {
  const before = test.before;
  const guarded = (hook: Callback) =>
    before(async (state) => {
      try {
        await hook(state);
      } catch (error) {
        hookErrors.push(error);
        throw error;
      }
    });
  test.before = Object.assign(guarded, { each: before.each });
}

function nameSkippedTests(test: typeof uvu.test): void {
  const skip = test.skip;
  test.skip = (name?: string) => {
    skippedNames.push(`${registering}: ${name ?? '(unnamed)'}`);
    skip();
  };
}

/** Wraps a suite's runner: tallies its counts, and turns tests that did not run without an error into a failure. */
function countAndFailSwallowedHooks(run: Runner, file: string): Runner {
  return async () => {
    hookErrors = [];
    const [errors, passed, skipped, total] = await run();
    counts.passed += passed;
    counts.failed += total - passed;
    counts.skipped += skipped;
    if (errors !== true || passed === total) return [errors, passed, skipped, total];
    const causes = hookErrors.map((e) => (e instanceof Error ? (e.stack ?? e.message) : String(e))).join('\n');
    return [
      `  FAIL  ${file}: ${total - passed} of ${total} tests did not run: a before hook threw\n    ${causes || '(no error recorded)'}\n`,
      passed,
      skipped,
      total,
    ];
  };
}
