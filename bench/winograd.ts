// `BASE=/path/to/dist/index.js node --import tsx bench/winograd.ts [--layers]`: this tree's Winograd
// (src/, build/) against a baseline build of the package (BASE: another checkout's dist/index.js,
// say main's), in one process, so the ratio is the kernels' alone (bench/ab.ts). ResNet-50
// (weights/default.rnw and the benchmark's seeded one) and the benchmark ResNet-18, on 1 and 2
// threads; ROUNDS interleaved rounds of RUNS inferences each, reported as the median per-round ratio
// of medians and its spread, after checking that both give the same logits. With `--layers`: every
// 3x3 stride-1 layer one by one (1 thread), each side's fastest time over the rounds.
import { readFileSync } from 'node:fs';
import { benchmarkModel, quantizeForBenchmark } from '../src/builder/bench-model.ts';
import { resnetFloat } from '../src/builder/resnet.ts';
import { loadModel } from '../src/runtime/model.ts';
import { layerTable, THREADS, wholeHeader, wholeRow } from './ab.ts';

if (!process.env.BASE) throw new Error('BASE: the path of the baseline build (a dist/index.js) is required');
const base = (await import(process.env.BASE)) as { loadModel: typeof loadModel };

const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', new Uint8Array(readFileSync('weights/default.rnw'))],
  ['ResNet-50 (bench model)', quantizeForBenchmark(resnetFloat({ depth: 50, seed: 1 }))],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  for (const [name, bytes] of models) {
    const [ours, theirs] = [await loadModel(bytes, { threads: 1 }), await base.loadModel(bytes, { threads: 1 })];
    console.log(layerTable(name, 'winograd', ['this', ours], ['base', theirs]));
    ours.dispose();
    theirs.dispose();
  }
  process.exit(0);
}

console.log(wholeHeader('this', 'base'));
for (const [name, bytes] of models) {
  for (const threads of THREADS) {
    const ours = await loadModel(bytes, { threads });
    const theirs = await base.loadModel(bytes, { threads });
    console.log(wholeRow(name, threads, ours, theirs));
    ours.dispose();
    theirs.dispose();
  }
}
