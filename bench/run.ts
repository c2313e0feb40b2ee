// `npm run bench`: ResNet-18, 224x224, batch 1, on resnet-wasm and its peers, in one run on this
// machine. Everyone runs the same network, our builder's seeded ResNet-18 (the one benchmarkModel
// writes): as our .rnw file, as torchvision-style fp32 ONNX, and as quantize_static-style QDQ int8
// ONNX with our file's activation parameters. Each configuration runs in its own child process
// (bench/peers/measure.ts), so a peak RSS is one runtime's. Prints a Markdown table and writes
// bench/results.json (--results PATH); --plot also draws the chart beside it (results.svg);
// --quick is a smoke run of a few runs.
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { resnetFloat } from '../src/builder/resnet.ts';
import { formatInputTimings, fullHdJpeg, type InputTiming, timeInputPath } from '../src/cli/input-timing.ts';
import { encodeOnnxModel } from '../src/convert/onnx-proto.ts';
import { readModel } from '../src/format/reader.ts';
import { macs, outputTensor } from '../src/model/types.ts';
import { cosine } from '../test/helpers/metrics.ts';
import { ActivationRanges, exportFolded, exportQdq } from '../test/helpers/onnx-export.ts';
import { measureFloor } from './floor.ts';
import { benchInput, type Job, type Measurement, type Peer, type PeerInput, type Plan } from './peers/measure.ts';
import { load as loadOnnxRuntimeNode } from './peers/onnxruntime-node.ts';
import { barChart } from './plot.ts';

type Precision = 'int8' | 'fp32';

interface Config {
  peer: Peer;
  precision: Precision;
  threads: number;
}

interface Row extends Config {
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  gmacPerS: number;
  /** Of the floor of the cores used: threads x the 1-thread floor. */
  floorPercent: number;
  /** Median latency over onnxruntime-web int8's at the same thread count (0.5 = twice as fast). */
  vsOrtWebInt8: number | null;
  peakRssMiB: number;
  loadMs: number;
  cpuPerWall: number;
  /** Logits vs onnxruntime-node at the same precision (fp32: native fp32; int8: its QDQ run on 1 thread). */
  cosine: number | null;
  timesMs: number[];
}

const FULL: Plan = { warmupRuns: 5, warmupMs: 3000, minRuns: 20, budgetMs: 10_000, maxRuns: 300 };
const QUICK: Plan = { warmupRuns: 1, warmupMs: 0, minRuns: 3, budgetMs: 0, maxRuns: 3 };
const MEASURE = fileURLToPath(new URL('./peers/measure.ts', import.meta.url));
const LABELS: Record<Peer, string> = {
  'resnet-wasm': 'resnet-wasm',
  'onnxruntime-web': 'onnxruntime-web (wasm)',
  'tfjs-wasm': 'tfjs-backend-wasm',
  'onnxruntime-node': 'onnxruntime-node (native)',
};

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    plot: { type: 'boolean', default: false },
    // A smoke test writes elsewhere, leaving the last real run's results in place.
    results: { type: 'string', default: fileURLToPath(new URL('./results.json', import.meta.url)) },
  },
});
const plan = flags.quick ? QUICK : FULL;
const require = createRequire(import.meta.url);

const machine = describeMachine();
console.error(
  `bench: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load average ${machine.loadAverageStart}`,
);
const floorGmacPerS = await measureFloor();
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const models = await writeModels(dir, benchInput());
const resnetMacs = models.macs;
const floorMs = resnetMacs / 1e6 / floorGmacPerS;
console.error(`bench: floor ${floorGmacPerS.toFixed(1)} GMAC/s, ResNet-18 in ${floorMs.toFixed(1)} ms`);

const threadCounts = [...new Set([1, availableParallelism()])];
const measured: { config: Config; m: Measurement | Error }[] = [];
for (const config of configs(threadCounts)) {
  console.error(`bench: ${LABELS[config.peer]} ${config.precision}, ${config.threads} thread(s)`);
  const model = config.peer === 'resnet-wasm' ? models.rnw : models[config.precision];
  const m = await child({ ...plan, peer: config.peer, model, threads: config.threads }).catch((e: Error) => e);
  if (m instanceof Error) console.error(`bench:   failed: ${m.message}`);
  measured.push({ config, m });
}
const baselineRssMiB = (await child({ ...plan, peer: null, model: '', threads: 1 })).peakRssMiB;
machine.loadAverageEnd = loadavg()[0].toFixed(2);

const ok = measured.filter((x): x is { config: Config; m: Measurement } => !(x.m instanceof Error));
const reference = {
  fp32: models.fp32Logits,
  int8: ok.find(({ config: c }) => c.peer === 'onnxruntime-node' && c.threads === 1)?.m.logits,
};
const rows = ok.map(({ config, m }) => row(config, m, reference[config.precision]));
for (const r of rows) {
  const ortWeb = rows.find((o) => o.peer === 'onnxruntime-web' && o.precision === 'int8' && o.threads === r.threads);
  r.vsOrtWebInt8 = ortWeb ? r.medianMs / ortWeb.medianMs : null;
}
const failed = measured
  .filter(({ m }) => m instanceof Error)
  .map(({ config, m }) => ({ ...config, error: (m as Error).message }));
const sizes = await shippedSizes();
console.error('bench: input path, a 1920x1080 JPEG');
const inputPath = await timeInput(rows.find((r) => r.peer === 'resnet-wasm' && r.threads === 1)?.medianMs);

console.log(report(rows, failed, sizes, baselineRssMiB));
console.log(inputPath.text);
const results = {
  date: new Date().toISOString(),
  quick: flags.quick,
  machine,
  plan,
  resnet18Macs: resnetMacs,
  floor: { gmacPerS: floorGmacPerS, resnet18Ms: floorMs },
  baselineRssMiB,
  configurations: rows,
  failed,
  shippedBytes: sizes,
  inputPath: inputPath.timings,
};
mkdirSync(dirname(flags.results!), { recursive: true });
writeFileSync(flags.results!, `${JSON.stringify(results, null, 1)}\n`);
if (flags.plot) {
  const bars = rows.map((r) => ({
    label: `${LABELS[r.peer]} ${r.precision}, ${r.threads} thread${r.threads > 1 ? 's' : ''}`,
    medianMs: r.medianMs,
    p10Ms: r.p10Ms,
    p90Ms: r.p90Ms,
    ours: r.peer === 'resnet-wasm',
  }));
  writeFileSync(
    flags.results!.replace(/(\.json)?$/, '.svg'),
    barChart(
      bars,
      floorMs,
      `ResNet-18 224x224, batch 1 — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`,
    ),
  );
}

function configs(threads: number[]): Config[] {
  const each = (peer: Peer, precision: Precision, counts = threads) =>
    counts.map((t) => ({ peer, precision, threads: t }));
  return [
    ...each('resnet-wasm', 'int8'),
    ...each('onnxruntime-web', 'int8'),
    ...each('onnxruntime-web', 'fp32'),
    // tfjs-backend-wasm never picks its threaded build in Node.
    ...each('tfjs-wasm', 'fp32', [1]),
    ...each('onnxruntime-node', 'int8'),
  ];
}

/** Runs one job in a child process (see bench/peers/measure.ts). */
function child(job: Job): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const measure = fork(MEASURE, [JSON.stringify(job)], { execArgv: ['--import', 'tsx'] });
    measure.once('message', (m) => resolve(m as Measurement));
    measure.once('exit', (code) => reject(new Error(`the child process exited (${code}) without a result`)));
  });
}

interface Models {
  rnw: string;
  fp32: string;
  int8: string;
  /** onnxruntime-node's fp32 logits on the bench input. */
  fp32Logits: number[];
  macs: number;
}

async function writeModels(dir: string, input: PeerInput): Promise<Models> {
  const paths = {
    rnw: join(dir, 'resnet18.rnw'),
    fp32: join(dir, 'resnet18-fp32.onnx'),
    int8: join(dir, 'resnet18-int8-qdq.onnx'),
  };
  const rnw = benchmarkModel();
  writeFileSync(paths.rnw, rnw);
  const float = resnetFloat({ depth: 18, seed: 1 });
  writeFileSync(paths.fp32, encodeOnnxModel(exportFolded(float, { batch: 1 })));
  const fp32Logits = Array.from(await (await loadOnnxRuntimeNode({ model: paths.fp32, threads: 1, input })).run());
  // quantize_static computes a scale and zero point from each tensor's min/max: these ranges give
  // back our file's (the scales rounded to f32, as ONNX stores them). Our fc writes f32 logits,
  // which a QDQ file quantizes as well: over the range they take here.
  const ranges = new ActivationRanges(float.tensors.length);
  readModel(rnw).header.tensors.forEach(({ scale, zeroPoint }, t) => {
    ranges.min[t] = -zeroPoint * scale;
    ranges.max[t] = (255 - zeroPoint) * scale;
  });
  const output = outputTensor(float);
  ranges.min[output] = Math.min(...fp32Logits);
  ranges.max[output] = Math.max(...fp32Logits);
  writeFileSync(paths.int8, encodeOnnxModel(exportQdq(float, ranges, { batch: 1 }).model));
  return { ...paths, fp32Logits, macs: macs(float) };
}

/**
 * Decode + preprocessing of a 1920x1080 JPEG made from test/photos/rocket.jpg, with each decoder
 * that loads, against resnet-wasm's 1-thread median (src/cli/input-timing.ts).
 */
async function timeInput(inferenceMs: number | undefined): Promise<{ timings: InputTiming[]; text: string }> {
  const header = readModel(readFileSync(models.rnw)).header;
  const photo = fileURLToPath(new URL('../test/photos/rocket.jpg', import.meta.url));
  const timings = await timeInputPath(
    await fullHdJpeg(photo),
    header.preprocessing,
    header.tensors[0],
    flags.quick ? 3 : 21,
  );
  const against = inferenceMs ?? NaN;
  return {
    timings,
    text: `\nInput path (median of ${flags.quick ? 3 : 21}; a 1920x1080 JPEG, quality 90, made from test/photos/rocket.jpg, to the 224x224 int8 input):\n${formatInputTimings(timings, against)}`,
  };
}

function row(config: Config, m: Measurement, reference: number[] | undefined): Row {
  const sorted = [...m.timesMs].sort((a, b) => a - b);
  const medianMs = percentile(sorted, 0.5);
  const gmacPerS = resnetMacs / 1e6 / medianMs;
  return {
    ...config,
    medianMs,
    p10Ms: percentile(sorted, 0.1),
    p90Ms: percentile(sorted, 0.9),
    gmacPerS,
    floorPercent: (100 * gmacPerS) / (config.threads * floorGmacPerS),
    vsOrtWebInt8: null,
    peakRssMiB: m.peakRssMiB,
    loadMs: m.loadMs,
    cpuPerWall: m.cpuPerWall,
    cosine: reference ? cosine(m.logits, reference) : null,
    timesMs: m.timesMs,
  };
}

/** Linear interpolation between the closest ranks of sorted values. */
function percentile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  return sorted[lo] + (sorted[Math.ceil(pos)] - sorted[lo]) * (pos - lo);
}

function describeMachine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(' ') ?? [];
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0].model,
    /** What the native peer can use that wasm cannot. */
    simd: ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni'].filter((f) => flags.includes(f)),
    cores: availableParallelism(),
    node: process.versions.node,
    loadAverageStart: loadavg()[0].toFixed(2),
    loadAverageEnd: '',
  };
}

/** What a browser downloads: ours bundled and minified (wasm inlined as base64), against the peers' wasm files. */
async function shippedSizes(): Promise<Record<string, { bytes: number; gzipBytes: number }>> {
  const ours = await build({
    entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    // Imported only on Node, behind a check (sharp too: src/image/native.ts): a browser never loads them.
    external: ['node:*', 'sharp'],
    write: false,
  });
  const size = (bytes: Uint8Array) => ({ bytes: bytes.length, gzipBytes: gzipSync(bytes).length });
  const file = (specifier: string) => size(readFileSync(require.resolve(specifier)));
  return {
    'resnet-wasm: src/index.ts, minified browser bundle': size(ours.outputFiles[0].contents),
    'onnxruntime-web: ort-wasm-simd-threaded.wasm': file('onnxruntime-web/ort-wasm-simd-threaded.wasm'),
    'tfjs-backend-wasm: tfjs-backend-wasm-simd.wasm': file(
      '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
    ),
  };
}

function report(
  rows: Row[],
  failed: (Config & { error: string })[],
  sizes: Awaited<ReturnType<typeof shippedSizes>>,
  baselineRssMiB: number,
): string {
  const f = (v: number | null, digits: number) => (v === null ? '–' : v.toFixed(digits));
  const lines = [
    `ResNet-18 224x224, batch 1, ${(resnetMacs / 1e9).toFixed(3)} GMAC. ${machine.cpu}${machine.simd.length ? ` (${machine.simd.join(', ')})` : ''}, ${machine.cores} cores, Node ${machine.node}; ` +
      `load average ${machine.loadAverageStart} at the start, ${machine.loadAverageEnd} at the end${flags.quick ? '; --quick: a smoke run, not a measurement' : ''}.`,
    `Floor: i32x4.dot_i16x8_s + i32x4.add from L1 at ${floorGmacPerS.toFixed(1)} GMAC/s on 1 thread, so ResNet-18 ≥ ${floorMs.toFixed(1)} ms; % floor is of threads × that rate.`,
    '',
    '| runtime | precision | threads | median ms | p10 | p90 | GMAC/s | % floor | × ort-web int8 | peak RSS MiB | load ms | cores busy |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${[LABELS[r.peer], r.precision, r.threads, f(r.medianMs, 1), f(r.p10Ms, 1), f(r.p90Ms, 1), f(r.gmacPerS, 1), f(r.floorPercent, 0), f(r.vsOrtWebInt8, 2), f(r.peakRssMiB, 0), f(r.loadMs, 0), f(r.cpuPerWall, 2)].join(' | ')} |`,
    ),
    ...failed.map((c) => `| ${LABELS[c.peer]} | ${c.precision} | ${c.threads} | failed: ${c.error} ||||||||`),
    '',
    `× ort-web int8: median latency over onnxruntime-web int8's at the same thread count. Peak RSS: the high-water mark of the configuration's own process; Node + tsx alone peak at ${baselineRssMiB.toFixed(0)} MiB.`,
    `Cores busy: process CPU time over wall time during the timed runs. Same network everywhere: the lowest logits cosine against onnxruntime-node ` +
      `at the same precision is ${(['int8', 'fp32'] as const).map((p) => `${f(Math.min(...rows.filter((r) => r.precision === p).map((r) => r.cosine ?? NaN)), 4)} (${p})`).join(', ')}.`,
    '',
    '| shipped to a browser | bytes | gzip |',
    '|---|--:|--:|',
    ...Object.entries(sizes).map(
      ([name, s]) => `| ${name} | ${s.bytes.toLocaleString('en')} | ${s.gzipBytes.toLocaleString('en')} |`,
    ),
  ];
  return lines.join('\n');
}
