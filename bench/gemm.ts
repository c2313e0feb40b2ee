// `node --import tsx bench/gemm.ts`: the 1x1 convs as the GEMM (assembly/gemm.ts) against the same
// layers on the direct kernel (`gemm: false`), in one process on one build, so the ratio is the
// kernel's alone (bench/ab.ts); with `BASE=/path/to/dist/index.js`, against the GEMM of that
// build instead (another checkout's, say main's). ResNet-50 (weights/default.rnw) and the benchmark
// ResNet-18 (seed 1), on 1 and 2 threads; ROUNDS interleaved rounds of RUNS inferences each,
// reported as the median per-round ratio of medians and its spread (a shared host slows either side
// at random). With `--layers`: ResNet-50's 1x1 layers one by one instead (1 thread), each side's
// minimum over the rounds.
import { readFileSync } from 'node:fs';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import type { LoadOptions } from '../src/runtime/model.ts';
import { loadModel } from '../src/runtime/model.ts';
import { layerTable, THREADS, wholeHeader, wholeRow } from './ab.ts';

const base = process.env.BASE ? ((await import(process.env.BASE)) as { loadModel: typeof loadModel }) : undefined;
const other = base ? 'base' : 'direct';
/** The B side: BASE's build with the same options, or this build's direct kernel. */
const loadOther = (bytes: Uint8Array, options: LoadOptions) =>
  base ? base.loadModel(bytes, options) : loadModel(bytes, { ...options, gemm: false });

const resnet50 = new Uint8Array(readFileSync('weights/default.rnw'));
const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', resnet50],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  const [gemm, b] = [await loadModel(resnet50, { threads: 1 }), await loadOther(resnet50, { threads: 1 })];
  console.log(layerTable(models[0][0], 'gemm', ['gemm', gemm], [other, b]));
  process.exit(0);
}

console.log(wholeHeader('gemm', other));
for (const [name, bytes] of models) {
  for (const threads of THREADS) {
    const gemm = await loadModel(bytes, { threads });
    const b = await loadOther(bytes, { threads });
    console.log(wholeRow(name, threads, gemm, b));
    gemm.dispose();
    b.dispose();
  }
}
