// A against B in one process: two loaded models of the same network (two builds, or one build with
// an option off), checked for the same logits, then timed in interleaved rounds. bench/gemm.ts and
// bench/winograd.ts compare kernels this way; the ratio is the kernels' alone.
import { positiveInteger } from '../src/cli/command.ts';
import { layerTimes } from '../src/cli/profile.ts';
import { median } from '../src/cli/statistics.ts';
import { macs } from '../src/model/types.ts';
import type { ConvPath } from '../src/runtime/conv-path.ts';
import type { Model } from '../src/runtime/model.ts';
import { roundRatios } from './rounds.ts';

export const ROUNDS = positiveInteger(process.env.ROUNDS ?? '7', 'ROUNDS');
export const RUNS = positiveInteger(process.env.RUNS ?? '10', 'RUNS');
export const THREADS = (process.env.THREADS ?? '1,2').split(',').map((t) => positiveInteger(t, 'THREADS'));

/** A seeded input tensor of the model's input shape. */
export function benchInput(model: Model): Uint8Array {
  const t0 = model.layers.header.tensors[0];
  return new Uint8Array(t0.h * t0.w * t0.c).map((_, i) => (i * 37) & 255);
}

function sameLogits(name: string, a: Model, b: Model, input: Uint8Array): void {
  const [x, y] = [a, b].map((model) => Buffer.from(model.run(input).buffer));
  if (!x.equals(y)) throw new Error(`${name}: the two sides' logits differ`);
}

function timeRuns(model: Model, input: Uint8Array): number[] {
  return Array.from({ length: RUNS }, () => {
    const start = performance.now();
    model.run(input);
    return performance.now() - start;
  });
}

/** The header of wholeRow's table, with the two sides' names. */
export function wholeHeader(a: string, b: string): string {
  return `| model | threads | ${a} ms | ${b} ms | ${a} / ${b} (median of ${ROUNDS} rounds) | spread |\n|---|---|---|---|---|---|`;
}

/** Whole inferences of `a` and `b`, ROUNDS interleaved rounds of RUNS each: one table row. */
export function wholeRow(name: string, threads: number, a: Model, b: Model): string {
  const input = benchInput(a);
  sameLogits(name, a, b, input);
  for (const model of [a, b]) for (let i = 0; i < 3; i++) model.run(input);
  const times = { a: [] as number[], b: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first, so a slow spell does not always land on the same side.
    const first = round % 2 ? b : a;
    const second = round % 2 ? a : b;
    const [t1, t2] = [first, second].map((model) => median(timeRuns(model, input)));
    times.a.push(round % 2 ? t2 : t1);
    times.b.push(round % 2 ? t1 : t2);
  }
  const ratio = roundRatios(times.a, times.b)!;
  const spread = `${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)}`;
  return `| ${name} | ${threads} | ${median(times.a).toFixed(1)} | ${median(times.b).toFixed(1)} | ${ratio.median.toFixed(3)} | ${spread} |`;
}

/**
 * The layers on `path`, one by one: each side's fastest time over ROUNDS interleaved rounds of 3
 * runs, in ms and GMAC/s, as a table, with the sum over those layers last.
 */
export function layerTable(name: string, path: ConvPath, a: [string, Model], b: [string, Model]): string {
  sameLogits(name, a[1], b[1], benchInput(a[1]));
  const fastest = (times: number[]) => Math.min(...times);
  const rounds: number[][][] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    rounds[0].push(layerTimes(a[1], 3, fastest));
    rounds[1].push(layerTimes(b[1], 3, fastest));
  }
  const { layers, tensors } = a[1].layers.header;
  const paths = a[1].layers.convPaths();
  const [an, bn] = [a[0], b[0]];
  const lines = [
    `| layer | ${an} ms | ${bn} ms | ${an} GMAC/s | ${bn} GMAC/s | ${an} / ${bn} |`,
    '|---|---|---|---|---|---|',
  ];
  const sums = [0, 0];
  layers.forEach((layer, i) => {
    if (paths[i] !== path) return;
    const [x, y] = rounds.map((r) => fastest(r.map((times) => times[i])));
    sums[0] += x;
    sums[1] += y;
    const mmacs = macs({ tensors, layers: [layer] }) / 1e6;
    lines.push(
      `| ${layer.name} | ${x.toFixed(3)} | ${y.toFixed(3)} | ${(mmacs / x).toFixed(1)} | ${(mmacs / y).toFixed(1)} | ${(x / y).toFixed(3)} |`,
    );
  });
  lines.push(
    `| all ${path} layers | ${sums[0].toFixed(2)} | ${sums[1].toFixed(2)} | | | ${(sums[0] / sums[1]).toFixed(3)} |`,
  );
  return `\n${name}\n\n${lines.join('\n')}`;
}
