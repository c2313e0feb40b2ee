// `node --import tsx bench/gemm.ts`: the convs that run as the GEMM (assembly/gemm.ts: the 1x1
// convs, and the taps path's 3x3 stride-2 convs) against the same layers on the direct kernel
// (`gemm: false`), in one process on one build, so the ratio is the kernel's alone (bench/ab.ts);
// with `BASE=/path/to/dist/index.js`, against the GEMM of that build instead (another checkout's,
// say main's). ResNet-50 (weights/default.rnw, Caffe's, its strides on the 1x1 convs; and the
// benchmark's seeded torchvision one, its strides on the 3x3) and the benchmark ResNet-18 (seed 1),
// on 1 and 2 threads; ROUNDS interleaved rounds of RUNS inferences each, reported as the median
// per-round ratio of medians and its spread (a shared host slows either side at random). With
// `--layers`: the networks' gemm and taps layers one by one instead (1 thread), each side's minimum
// over the rounds.
import { readFileSync } from 'node:fs';
import { benchmarkModel, quantizeForBenchmark } from '../src/builder/bench-model.ts';
import { resnetFloat } from '../src/builder/resnet.ts';
import type { LoadOptions } from '../src/runtime/model.ts';
import { loadModel } from '../src/runtime/model.ts';
import { layerTable, THREADS, wholeHeader, wholeRow } from './ab.ts';

const base = process.env.BASE ? ((await import(process.env.BASE)) as { loadModel: typeof loadModel }) : undefined;
const other = base ? 'base' : 'direct';
/** The B side: BASE's build with the same options, or this build's direct kernel. */
const loadOther = (bytes: Uint8Array, options: LoadOptions) =>
  base ? base.loadModel(bytes, options) : loadModel(bytes, { ...options, gemm: false });

const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', new Uint8Array(readFileSync('weights/default.rnw'))],
  ['ResNet-50 (bench model)', quantizeForBenchmark(resnetFloat({ depth: 50, seed: 1 }))],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  for (const [name, bytes] of models) {
    const [gemm, b] = [await loadModel(bytes, { threads: 1 }), await loadOther(bytes, { threads: 1 })];
    for (const path of ['gemm', 'taps'] as const) {
      if (gemm.layers.convPaths().includes(path)) console.log(layerTable(name, path, [path, gemm], [other, b]));
    }
    gemm.dispose();
    b.dispose();
  }
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
