// One configuration in a child process of bench/run.ts, so that its peak RSS is that runtime's
// alone: load a peer (one file per runtime beside this one) and warm it up, then time a stretch of
// runs whenever the parent asks (once a round) and send the numbers back. PeerProcess is the
// parent's side.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mulberry32 } from '../../src/builder/random.ts';
import { imagenetPreprocessing } from '../../src/builder/resnet.ts';
import type { RgbImage } from '../../src/image/decode.ts';
import { preprocessFloat } from '../../src/image/preprocess.ts';
import type { Shape } from '../../src/model/types.ts';
import { forkChild, nextMessage } from '../children.ts';

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

/** Loading and warming up, once per process: JIT tiers, caches, thread pools. */
export interface Job {
  /** null: load nothing, to measure the RSS of Node and tsx alone. */
  peer: Peer | null;
  model: string;
  threads: number;
  /** Warm-up lasts this many runs and this long, whichever ends later. */
  warmupRuns: number;
  warmupMs: number;
}

/** One round's share of a configuration: one untimed run, then at least minRuns, more while ms lasts, at most maxRuns. */
export interface Stretch {
  minRuns: number;
  ms: number;
  maxRuns: number;
}

export interface StretchResult {
  timesMs: number[];
  /** Process CPU time over wall time during the timed runs: how many cores were busy. */
  cpuPerWall: number;
  /** Of the last run. */
  logits: number[];
}

type Request = { stretch: Stretch } | { finish: true };
type Reply = { ready: { loadMs: number } } | { stretch: StretchResult } | { done: { peakRssMiB: number } };

/**
 * One configuration in its own process, loaded and warmed up once, asked for a stretch of runs in
 * each round: its peak RSS stays that runtime's alone, and no runtime warms another's caches.
 */
export class PeerProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly what: string,
    readonly loadMs: number,
  ) {}

  static async start(job: Job): Promise<PeerProcess> {
    const child = forkChild(fileURLToPath(import.meta.url), [JSON.stringify(job)]);
    const what = `${job.peer ?? 'baseline'}, ${job.threads} thread(s)`;
    const { ready } = await nextMessage<Extract<Reply, { ready: unknown }>>(child, what);
    return new PeerProcess(child, what, ready.loadMs);
  }

  async stretch(stretch: Stretch): Promise<StretchResult> {
    return (await this.ask<Extract<Reply, { stretch: unknown }>>({ stretch })).stretch;
  }

  /** Ends the process; its peak RSS. */
  async finish(): Promise<number> {
    return (await this.ask<Extract<Reply, { done: unknown }>>({ finish: true })).done.peakRssMiB;
  }

  private ask<T>(request: Request): Promise<T> {
    const reply = nextMessage<T>(this.child, this.what);
    // A child that died cannot be written to: nextMessage rejects on its exit, and the callback
    // keeps the write's error from being an unhandled 'error' event that would end the parent.
    this.child.send(request, () => {});
    return reply;
  }
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

async function load(job: Job): Promise<{ session: Session | null; loadMs: number }> {
  if (!job.peer) return { session: null, loadMs: 0 };
  const { load } = (await import(`./${job.peer}.ts`)) as { load: (options: PeerOptions) => Promise<Session> };
  const loadStart = performance.now();
  const session = await load({ model: job.model, threads: job.threads, input: benchInput() });
  const loadMs = performance.now() - loadStart;
  const warmupStart = performance.now();
  for (let i = 0; i < job.warmupRuns || performance.now() - warmupStart < job.warmupMs; i++) await session.run();
  return { session, loadMs };
}

async function runStretch(session: Session, { minRuns, ms, maxRuns }: Stretch): Promise<StretchResult> {
  // Since this process last ran, other configurations have had the caches and the cores.
  await session.run();
  const timesMs: number[] = [];
  let logits: Float32Array = new Float32Array(0);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  while (timesMs.length < minRuns || (performance.now() - start < ms && timesMs.length < maxRuns)) {
    const t = performance.now();
    logits = await session.run();
    timesMs.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuPerWall = (cpu.user + cpu.system) / 1000 / (performance.now() - start);
  return { timesMs, cpuPerWall, logits: Array.from(logits) };
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
  const { session, loadMs } = await load(JSON.parse(process.argv[2]) as Job);
  const reply = (r: Reply, then: () => void = () => {}) => process.send!(r, then);
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (request: Request) => {
    if ('finish' in request)
      // Exit at once: some runtimes keep worker threads alive.
      reply({ done: { peakRssMiB: peakRssMiB() } }, () => process.exit(0));
    else if (!session) throw new Error('the baseline process runs nothing');
    else reply({ stretch: await runStretch(session, request.stretch) });
  });
  reply({ ready: { loadMs } });
}
