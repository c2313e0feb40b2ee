// The floor: how many int8 MACs per second `i32x4.dot_i16x8_s` + `i32x4.add` can do on this CPU,
// on one thread (bench/floor/dot.ts). It is compiled here, in memory, with the repo's asc and
// without asconfig.json, so it never touches the shipped kernels' build.
import { readFileSync } from 'node:fs';
import asc from 'assemblyscript/asc';

const SOURCE = new URL('./floor/dot.ts', import.meta.url);
/** Each timed call runs at least this long: the call and timer overheads vanish. */
const CALL_MS = 20;
/** About a second in all: the first calls may still run baseline (Liftoff) code. */
const CALLS = 30;

/** GMAC/s, the best of CALLS timed calls. */
export async function measureFloor(): Promise<number> {
  const result = await asc.compileString(
    { 'dot.ts': readFileSync(SOURCE, 'utf8') },
    { optimizeLevel: 3, shrinkLevel: 0, runtime: 'stub', noAssert: true, enable: ['simd'] },
  );
  if (result.error || !result.binary) throw new Error(`floor: asc failed: ${result.stderr.toString()}`);
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(result.binary)));
  const run = exports.run as (reps: number) => number;
  const macsPerRep = (exports.MACS_PER_REP as WebAssembly.Global).value as number;

  // Doubling the work until a call takes CALL_MS also warms the code up into the optimizing tier.
  let reps = 1000;
  while (time(() => run(reps)) < CALL_MS) reps *= 2;
  let best = Infinity;
  // The best call, not the median: nothing makes the loop faster than the hardware allows, while
  // a shared machine's other work can only make a call slower.
  for (let i = 0; i < CALLS; i++)
    best = Math.min(
      best,
      time(() => run(reps)),
    );
  return (reps * macsPerRep) / best / 1e6;
}

function time(f: () => void): number {
  const start = performance.now();
  f();
  return performance.now() - start;
}
