// `BASE=/path/to/dist/index.js node --import tsx bench/winograd.ts [--layers]`: this tree's Winograd
// (src/, build/) against a baseline build of the package (BASE: another checkout's dist/index.js,
// say main's), in one process, so the ratio is the kernels' alone. ResNet-50 (weights/default.rnw
// and the benchmark's seeded one) and the benchmark ResNet-18, on 1 and 2 threads; ROUNDS
// interleaved rounds of RUNS inferences each, reported as the median per-round ratio of medians and
// its spread, after checking that both give the same logits. With `--layers`: every 3x3 stride-1
// layer one by one (1 thread), each side's fastest time over the rounds, in direct-conv GMAC/s.
import { readFileSync } from 'node:fs';
import { benchmarkModel, quantizeForBenchmark } from '../src/builder/bench-model.ts';
import { resnetFloat } from '../src/builder/resnet.ts';
import { layerTimes } from '../src/cli/profile.ts';
import { median } from '../src/cli/statistics.ts';
import { macs } from '../src/model/types.ts';
import { loadModel, type Model } from '../src/runtime/model.ts';
import { roundRatios } from './rounds.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const RUNS = Number(process.env.RUNS ?? 10);
const THREADS = (process.env.THREADS ?? '1,2').split(',').map(Number);
if (!process.env.BASE) throw new Error('BASE: the path of the baseline build (a dist/index.js) is required');
const base = (await import(process.env.BASE)) as { loadModel: typeof loadModel };

const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', new Uint8Array(readFileSync('weights/default.rnw'))],
  ['ResNet-50 (bench model)', quantizeForBenchmark(resnetFloat({ depth: 50, seed: 1 }))],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  for (const [name, bytes] of models) await compareLayers(name, bytes);
  process.exit(0);
}

console.log(`| model | threads | this ms | base ms | this / base (median of ${ROUNDS} rounds) | spread |`);
console.log('|---|---|---|---|---|---|');
for (const [name, bytes] of models) {
  for (const threads of THREADS) {
    const ours = await loadModel(bytes, { threads });
    const theirs = await base.loadModel(bytes, { threads });
    const input = benchInput(ours);
    sameLogits(name, ours, theirs, input);
    for (const model of [ours, theirs]) for (let i = 0; i < 3; i++) model.run(input);
    const times = { ours: [] as number[], theirs: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so a slow spell does not always land on the same side.
      const order = round % 2 ? ([theirs, ours] as const) : ([ours, theirs] as const);
      const [a, b] = order.map((model) => median(timeRuns(model, input)));
      times.ours.push(round % 2 ? b : a);
      times.theirs.push(round % 2 ? a : b);
    }
    const ratio = roundRatios(times.ours, times.theirs)!;
    console.log(
      `| ${name} | ${threads} | ${median(times.ours).toFixed(1)} | ${median(times.theirs).toFixed(1)} | ${ratio.median.toFixed(3)} | ${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)} |`,
    );
    ours.dispose();
    theirs.dispose();
  }
}

function benchInput(model: Model): Uint8Array {
  const t0 = model.layers.header.tensors[0];
  return new Uint8Array(t0.h * t0.w * t0.c).map((_, i) => (i * 37) & 255);
}

function sameLogits(name: string, ours: Model, theirs: Model, input: Uint8Array): void {
  const [a, b] = [ours, theirs].map((model) => Buffer.from(model.run(input).buffer));
  if (!a.equals(b)) throw new Error(`${name}: the logits differ from the baseline's`);
}

function timeRuns(model: Model, input: Uint8Array): number[] {
  return Array.from({ length: RUNS }, () => {
    const start = performance.now();
    model.run(input);
    return performance.now() - start;
  });
}

/** Each Winograd layer's fastest time on both sides, over interleaved rounds of 3 runs each. */
async function compareLayers(name: string, bytes: Uint8Array): Promise<void> {
  const ours = await loadModel(bytes);
  const theirs = await base.loadModel(bytes);
  sameLogits(name, ours, theirs, benchInput(ours));
  const fastest = (times: number[]) => Math.min(...times);
  const rounds = { ours: [] as number[][], theirs: [] as number[][] };
  for (let round = 0; round < ROUNDS; round++) {
    rounds.ours.push(layerTimes(ours, 3, fastest));
    rounds.theirs.push(layerTimes(theirs, 3, fastest));
  }
  const { layers, tensors } = ours.layers.header;
  const paths = ours.layers.convPaths();
  console.log(`\n${name}\n`);
  console.log('| layer | base ms | this ms | base GMAC/s | this GMAC/s | this / base |');
  console.log('|---|---|---|---|---|---|');
  const sums = [0, 0];
  layers.forEach((layer, i) => {
    if (paths[i] !== 'winograd') return;
    const [b, o] = [rounds.theirs, rounds.ours].map((r) => fastest(r.map((times) => times[i])));
    sums[0] += b;
    sums[1] += o;
    const mmacs = macs({ tensors, layers: [layer] }) / 1e6;
    console.log(
      `| ${layer.name} | ${b.toFixed(3)} | ${o.toFixed(3)} | ${(mmacs / b).toFixed(1)} | ${(mmacs / o).toFixed(1)} | ${(o / b).toFixed(3)} |`,
    );
  });
  console.log(`| all 3x3 | ${sums[0].toFixed(2)} | ${sums[1].toFixed(2)} | | | ${(sums[1] / sums[0]).toFixed(3)} |`);
  ours.dispose();
  theirs.dispose();
}
