// `node --import tsx bench/gemm.ts`: the convs that run as the GEMM (assembly/gemm.ts: the 1x1
// convs, and the taps path's 3x3 stride-2 convs) against the same layers on the direct kernel
// (`gemm: false`), in one process on one build, so the ratio is the kernel's alone (bench/ab.ts).
// ResNet-50 (weights/default.rnw, Caffe's, its strides on the 1x1 convs; and the benchmark's seeded
// torchvision one, its strides on the 3x3) and the benchmark ResNet-18 (seed 1), on 1 and 2
// threads; ROUNDS interleaved rounds of RUNS inferences each, reported as the median per-round ratio
// of medians and its spread (a shared host slows either side at random). With `--layers`: the
// networks' gemm and taps layers one by one instead, each side's minimum over the rounds.
import { readFileSync } from 'node:fs';
import { benchmarkModel, quantizeForBenchmark } from '../src/builder/bench-model.ts';
import { resnetFloat } from '../src/builder/resnet.ts';
import { loadModel } from '../src/runtime/model.ts';
import { layerTable, THREADS, wholeHeader, wholeRow } from './ab.ts';

const resnet50 = new Uint8Array(readFileSync('weights/default.rnw'));
const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', resnet50],
  ['ResNet-50 (bench model)', quantizeForBenchmark(resnetFloat({ depth: 50, seed: 1 }))],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  for (const [name, bytes] of models) {
    const [gemm, direct] = [await loadModel(bytes), await loadModel(bytes, { gemm: false })];
    for (const path of ['gemm', 'taps'] as const) {
      if (gemm.layers.convPaths().includes(path)) console.log(layerTable(name, path, [path, gemm], ['direct', direct]));
    }
    gemm.dispose();
    direct.dispose();
  }
  process.exit(0);
}

console.log(wholeHeader('gemm', 'direct'));
for (const [name, bytes] of models) {
  for (const threads of THREADS) {
    const gemm = await loadModel(bytes, { threads });
    const direct = await loadModel(bytes, { threads, gemm: false });
    console.log(wholeRow(name, threads, gemm, direct));
    gemm.dispose();
    direct.dispose();
  }
}
