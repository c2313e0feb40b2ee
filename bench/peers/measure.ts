// One configuration in a child process of bench/run.ts, so that its peak RSS is that runtime's
// alone: load a peer (one file per runtime beside this one), warm it up, time it, send the numbers.
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../../src/builder/random.ts';
import { imagenetPreprocessing } from '../../src/builder/resnet.ts';
import type { RgbImage } from '../../src/image/decode.ts';
import { preprocessFloat } from '../../src/image/preprocess.ts';
import type { Shape } from '../../src/model/types.ts';

/** The same photo for everyone, in each runtime's layout (ours quantizes `image` itself). */
export interface PeerInput {
  image: RgbImage;
  shape: Shape;
  nhwc: Float32Array;
  nchw: Float32Array;
}

export interface PeerOptions {
  /** The model file this runtime reads. */
  model: string;
  threads: number;
  input: PeerInput;
}

/** A loaded runtime holding its input: one inference, the logits. */
export interface Session {
  run(): Float32Array | Promise<Float32Array>;
}

export type Peer = 'resnet-wasm' | 'onnxruntime-web' | 'tfjs-wasm' | 'onnxruntime-node';

export interface Plan {
  /** Warm-up lasts this many runs and this long, whichever ends later (JIT tiers, caches, thread pools). */
  warmupRuns: number;
  warmupMs: number;
  /** Timed runs: at least minRuns, more while the budget lasts, at most maxRuns. */
  minRuns: number;
  budgetMs: number;
  maxRuns: number;
}

export interface Job extends Plan {
  /** null: load nothing, to measure the RSS of Node and tsx alone. */
  peer: Peer | null;
  model: string;
  threads: number;
}

export interface Measurement {
  loadMs: number;
  timesMs: number[];
  /** Process CPU time over wall time during the timed runs: how many cores were busy. */
  cpuPerWall: number;
  peakRssMiB: number;
  logits: number[];
}

const INPUT_SIZE = 224;

/** A seeded noise photo, preprocessed as torchvision's ImageNet models expect. */
export function benchInput(): PeerInput {
  const random = mulberry32(7);
  const image = {
    width: INPUT_SIZE,
    height: INPUT_SIZE,
    data: Uint8Array.from({ length: INPUT_SIZE * INPUT_SIZE * 3 }, () => Math.floor(random() * 256)),
  };
  const shape = { h: INPUT_SIZE, w: INPUT_SIZE, c: 3 };
  const nhwc = preprocessFloat(image, imagenetPreprocessing(INPUT_SIZE));
  const nchw = new Float32Array(nhwc.length);
  const pixels = shape.h * shape.w;
  for (let p = 0; p < pixels; p++) for (let c = 0; c < shape.c; c++) nchw[c * pixels + p] = nhwc[p * shape.c + c];
  return { image, shape, nhwc, nchw };
}

async function measure(job: Job): Promise<Measurement> {
  if (!job.peer) return { loadMs: 0, timesMs: [], cpuPerWall: 0, peakRssMiB: peakRssMiB(), logits: [] };
  const { load } = (await import(`./${job.peer}.ts`)) as { load: (options: PeerOptions) => Promise<Session> };
  const input = benchInput();
  const loadStart = performance.now();
  const session = await load({ model: job.model, threads: job.threads, input });
  const loadMs = performance.now() - loadStart;

  const warmupStart = performance.now();
  for (let i = 0; i < job.warmupRuns || performance.now() - warmupStart < job.warmupMs; i++) await session.run();

  const timesMs: number[] = [];
  let logits: Float32Array = new Float32Array(0);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  while (timesMs.length < job.minRuns || (performance.now() - start < job.budgetMs && timesMs.length < job.maxRuns)) {
    const t = performance.now();
    logits = await session.run();
    timesMs.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuPerWall = (cpu.user + cpu.system) / 1000 / (performance.now() - start);
  return { loadMs, timesMs, cpuPerWall, peakRssMiB: peakRssMiB(), logits: Array.from(logits) };
}

/**
 * This process's peak resident memory. On Linux, getrusage's maxRSS (process.resourceUsage())
 * keeps the parent's peak across fork + exec, so there it is VmHWM: the high-water mark of this
 * process's own memory map, worker threads included.
 */
function peakRssMiB(): number {
  const status = existsSync('/proc/self/status') ? readFileSync('/proc/self/status', 'utf8') : '';
  const kib = /^VmHWM:\s*(\d+) kB$/m.exec(status)?.[1];
  return (kib ? Number(kib) : process.resourceUsage().maxRSS) / 1024;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await measure(JSON.parse(process.argv[2]) as Job);
  // Exit at once: some runtimes keep worker threads alive.
  process.send!(result, () => process.exit(0));
}
