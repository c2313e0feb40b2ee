// A test that needs something absent is registered as skipped (the runner counts and names it),
// with the reason printed: never silently left out, never a pass that checked nothing.
import { test } from 'uvu';

export function skipBecause(name: string, reason: string): void {
  console.log(`    skipped "${name}": ${reason}`);
  test.skip(name);
}
