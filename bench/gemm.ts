// `node --import tsx bench/gemm.ts`: the 1x1 convs as the GEMM (assembly/gemm.ts) against the same
// layers on the direct kernel (`gemm: false`), in one process on one build, so the ratio is the
// kernel's alone. ResNet-50 (weights/default.rnw) and the benchmark ResNet-18 (seed 1), on 1 and 2
// threads; ROUNDS interleaved rounds of RUNS inferences each, reported as the median per-round
// ratio of medians and its spread (a shared host slows either side at random). With `--layers`:
// ResNet-50's 1x1 layers one by one instead, each side's minimum over the rounds, in GMAC/s.
import { readFileSync } from 'node:fs';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { positiveInteger } from '../src/cli/command.ts';
import { layerTimes } from '../src/cli/profile.ts';
import { median } from '../src/cli/statistics.ts';
import { macs } from '../src/model/types.ts';
import { loadModel, type Model } from '../src/runtime/model.ts';
import { roundRatios } from './rounds.ts';

const ROUNDS = positiveInteger(process.env.ROUNDS ?? '7', 'ROUNDS');
const RUNS = positiveInteger(process.env.RUNS ?? '10', 'RUNS');
const THREADS = (process.env.THREADS ?? '1,2').split(',').map((t) => positiveInteger(t, 'THREADS'));

const resnet50 = new Uint8Array(readFileSync('weights/default.rnw'));
const models: [string, Uint8Array][] = [
  ['ResNet-50 (weights/default.rnw)', resnet50],
  ['ResNet-18 (bench model)', benchmarkModel()],
];

if (process.argv.includes('--layers')) {
  await compareLayers(resnet50);
  process.exit(0);
}

console.log(`| model | threads | gemm ms | direct ms | gemm / direct (median of ${ROUNDS} rounds) | spread |`);
console.log('|---|---|---|---|---|---|');
for (const [name, bytes] of models) {
  for (const threads of THREADS) {
    const gemm = await loadModel(bytes, { threads });
    const direct = await loadModel(bytes, { threads, gemm: false });
    const t0 = gemm.layers.header.tensors[0];
    const input = new Uint8Array(t0.h * t0.w * t0.c).map((_, i) => (i * 37) & 255);
    const same = Buffer.from(gemm.run(input).buffer).equals(Buffer.from(direct.run(input).buffer));
    if (!same) throw new Error(`${name}, ${threads} thread(s): the GEMM's logits differ from the direct kernel's`);
    for (const model of [gemm, direct]) for (let i = 0; i < 3; i++) model.run(input);
    const times = { gemm: [] as number[], direct: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so a slow spell does not always land on the same side.
      const order = round % 2 ? ([direct, gemm] as const) : ([gemm, direct] as const);
      const [a, b] = order.map((model) => median(timeRuns(model, input)));
      const [g, d] = round % 2 ? [b, a] : [a, b];
      times.gemm.push(g);
      times.direct.push(d);
    }
    const ratio = roundRatios(times.gemm, times.direct)!;
    console.log(
      `| ${name} | ${threads} | ${median(times.gemm).toFixed(1)} | ${median(times.direct).toFixed(1)} | ${ratio.median.toFixed(3)} | ${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)} |`,
    );
    gemm.dispose();
    direct.dispose();
  }
}

function timeRuns(model: Model, input: Uint8Array): number[] {
  return Array.from({ length: RUNS }, () => {
    const start = performance.now();
    model.run(input);
    return performance.now() - start;
  });
}

/** Each GEMM layer's fastest time with gemm on and off, over interleaved rounds of 3 runs each. */
async function compareLayers(bytes: Uint8Array): Promise<void> {
  const gemm = await loadModel(bytes);
  const direct = await loadModel(bytes, { gemm: false });
  const fastest = (times: number[]) => Math.min(...times);
  const rounds = { gemm: [] as number[][], direct: [] as number[][] };
  for (let round = 0; round < ROUNDS; round++) {
    rounds.gemm.push(layerTimes(gemm, 3, fastest));
    rounds.direct.push(layerTimes(direct, 3, fastest));
  }
  const { layers, tensors } = gemm.layers.header;
  const paths = gemm.layers.convPaths();
  console.log(`| layer | direct ms | gemm ms | direct GMAC/s | gemm GMAC/s |`);
  console.log('|---|---|---|---|---|');
  layers.forEach((layer, i) => {
    if (paths[i] !== 'gemm') return;
    const [d, g] = [rounds.direct, rounds.gemm].map((r) => fastest(r.map((times) => times[i])));
    const mmacs = macs({ tensors, layers: [layer] }) / 1e6;
    console.log(
      `| ${layer.name} | ${d.toFixed(3)} | ${g.toFixed(3)} | ${(mmacs / d).toFixed(1)} | ${(mmacs / g).toFixed(1)} |`,
    );
  });
  gemm.dispose();
  direct.dispose();
}
