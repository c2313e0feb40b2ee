import { benchmarkModel } from '../builder/bench-model.ts';
import { checkThreads, fromText, type ThreadsChoice } from '../options/validate.ts';
import { loadModel, type Model } from '../runtime/model.ts';
import type { KernelBuild, KernelChoice } from '../runtime/wasm.ts';
import { coldCommand } from './cold.ts';
import { type CommandArgs, positiveInteger, UsageError } from './command.ts';
import { aboutFile } from './errors.ts';
import { defaultBenchPhoto, formatInputTimings, fullHdJpeg, type InputTiming, timeInputPath } from './input-timing.ts';
import { profileLayers } from './profile.ts';
import { percentile } from './statistics.ts';

export interface BenchResult {
  runtime: 'resnet-wasm';
  model: string;
  input: number;
  threads: number;
  kernels: KernelBuild;
  median_ms: number;
  p10_ms: number;
  p90_ms: number;
  gmac_per_s: number;
  /** On 1 thread: a 1920x1080 JPEG's decode + preprocessing, per decoder (input-timing.ts). */
  input_1080p?: InputTiming[];
}

const WARMUP_RUNS = 5;
/** jpeg-js takes ~170 ms a 1080p frame: enough runs for a median, few enough to stay quick. */
const INPUT_RUNS = 11;

/** `resnet-wasm bench` (options in commands.ts). */
export async function run({ values, flags }: CommandArgs): Promise<void> {
  if (flags.cold) return coldCommand({ model: values.model, json: flags.json });
  const runs = positiveInteger(values.runs, '--runs');
  const source = values.model ?? benchmarkModel();
  const kernels = kernelChoice(values.kernels!);
  for (const threads of threadCounts(values.threads!)) {
    const load = () => loadModel(source, { threads, kernels });
    const model = await (values.model === undefined ? load() : aboutFile(values.model, load));
    if (flags.profile) {
      process.stdout.write(profileLayers(model, runs));
    } else {
      const result = benchmark(model, runs, model.threads);
      const photo = values.photo ?? defaultBenchPhoto();
      if (model.threads === 1 && photo)
        result.input_1080p = await timeInputPath(
          await fullHdJpeg(photo),
          model.header.preprocessing,
          model.header.tensors[0],
          INPUT_RUNS,
        );
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatResult(result, model));
    }
    model.dispose();
  }
}

function kernelChoice(text: string): KernelChoice {
  if (text === 'auto' || text === 'baseline' || text === 'relaxed') return text;
  throw new UsageError(`--kernels must be auto, baseline or relaxed, not ${JSON.stringify(text)}`);
}

/** "2", "auto" (the cores, at most 4) or a list such as "1,2": one configuration each. */
function threadCounts(text: string): ThreadsChoice[] {
  return text.split(',').map((t) => checkThreads(fromText(t.trim())));
}

/** Times `runs` inferences on a fixed input after a warm-up; percentiles of the wall time. */
export function benchmark(model: Model, runs: number, threads: number): BenchResult {
  const t0 = model.header.tensors[0];
  const input = new Uint8Array(t0.h * t0.w * t0.c).map((_, i) => (i * 37) & 255);
  for (let i = 0; i < WARMUP_RUNS; i++) model.run(input);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    model.run(input);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = percentile(times, 0.5);
  return {
    runtime: 'resnet-wasm',
    model: model.header.architecture,
    input: t0.h,
    threads,
    kernels: model.kernelBuild,
    median_ms: round2(median),
    p10_ms: round2(percentile(times, 0.1)),
    p90_ms: round2(percentile(times, 0.9)),
    gmac_per_s: round2(model.macs / 1e6 / median),
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function formatResult(r: BenchResult, model: Model): string {
  const f = model.footprint();
  return [
    `${r.model} ${r.input}x${r.input}, batch 1, ${r.threads} thread(s), ${r.kernels} kernels, ${(model.macs / 1e9).toFixed(2)} GMAC`,
    `  median ${r.median_ms} ms  (p10 ${r.p10_ms}, p90 ${r.p90_ms})  ${r.gmac_per_s} GMAC/s`,
    `  memory: wasm ${mib(f.wasmBytes)}, parameters ${mib(f.parameterBytes)} + Winograd ${mib(f.derivedBytes)}, activation arena ${mib(f.arenaBytes)}`,
    ...(r.input_1080p ? [formatInputTimings(r.input_1080p, r.median_ms)] : []),
    '',
  ].join('\n');
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
