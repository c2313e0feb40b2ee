// `node --import tsx bench/gemm.ts`: the 1x1 convs as the GEMM (assembly/gemm.ts) against the same
// layers on the direct kernel (`gemm: false`), in one process on one build, so the ratio is the
// kernel's alone (bench/ab.ts). ResNet-50 (weights/default.rnw) and the benchmark ResNet-18 (seed
// 1), on 1 and 2 threads; ROUNDS interleaved rounds of RUNS inferences each, reported as the median
// per-round ratio of medians and its spread (a shared host slows either side at random). With
// `--layers`: ResNet-50's 1x1 layers one by one instead, each side's minimum over the rounds.
import { readFileSync } from 'node:fs';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { loadModel } from '../src/runtime/model.ts';
import { layerTable, THREADS, wholeHeader, wholeRow } from './ab.ts';

const resnet50 = new Uint8Array(readFileSync('weights/default.rnw'));
const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', resnet50],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  const [gemm, direct] = [await loadModel(resnet50), await loadModel(resnet50, { gemm: false })];
  console.log(layerTable(models[0][0], 'gemm', ['gemm', gemm], ['direct', direct]));
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
