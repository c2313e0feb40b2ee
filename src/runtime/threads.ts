/**
 * Running a layer on several threads that share one wasm memory. Each thread holds its own
 * instance of the threads build. The calling thread cuts each kernel call into chunks (more chunks
 * than threads, none below MIN_CHUNK_WORK; a call too small to cut runs on the caller alone),
 * posts the call on a small shared job board, and then the caller and the workers claim chunks
 * with an atomic counter until none are left. A worker that the OS has descheduled claims nothing,
 * so the others do its share; the caller waits only for chunks already being run. Waiting spins
 * briefly and then sleeps (Atomics.wait), which frees the core for whichever thread holds the
 * work. The caller wakes sleeping workers only while fewer than the host's cores are awake, so
 * with more threads than cores the extra ones sleep instead of taking turns on the cores. One job
 * at a time, so layers run in order. Workers are Node worker_threads, or in browsers Web Workers
 * started from a Blob of the same program.
 *
 * A worker that fails cannot finish the chunks it claimed, and the caller may be blocked where no
 * event reaches it: so a worker that throws (a wasm trap) leaves its thread, kernel and message on
 * the board and wakes the caller (reportFailure); one that dies outside its loop is reported by its
 * creator's listener. The call throws a ThreadFailureError, and so does every later one, as the
 * pool is then one thread short.
 */
import { ResnetWasmError, ThreadFailureError } from '../errors.ts';
import { invoke, KERNEL_NAMES, type KernelName, MAX_KERNEL_ARGS, type SlicedKernel, type Work } from './kernels.ts';
import { isNode } from './thread-count.ts';
import { KERNEL_ABORTED, type KernelExports } from './wasm.ts';

export interface Dispatch {
  readonly threads: number;
  /** Runs a kernel call in chunks over the threads; `args` in the table's order (kernels.ts argumentList). */
  run(kernel: SlicedKernel, args: readonly number[], work: Work): void;
  /** How the work has been shared so far. */
  stats(): ThreadStats;
  close(): void;
}

export interface ThreadStats {
  /** Chunks each thread has run (thread 0: the caller; a call too small to cut counts as one chunk). */
  chunksRun: number[];
  /** Workers not asleep. */
  awake: number;
}

export function singleThread(kernels: KernelExports): Dispatch {
  let calls = 0;
  return {
    threads: 1,
    run: (kernel, args) => {
      invoke(kernels, kernel, args, 0, 1, 0);
      calls++;
    },
    stats: () => ({ chunksRun: [calls], awake: 0 }),
    close: () => {},
  };
}

/**
 * The least work worth a chunk, in conv multiply-accumulates (kernels.ts Work): about 35 µs here,
 * against well under 1 µs to claim one and ~100 µs to wake a sleeping worker. Calls with less than
 * twice this run on the caller alone (ResNet-50's last adds, its gap and fc).
 */
export const MIN_CHUNK_WORK = 1 << 20;
/** At most this many chunks per thread: small enough chunks that a thread descheduled mid-chunk holds up little. */
const CHUNKS_PER_THREAD = 4;
/** A chunk's number takes the claim word's low 8 bits (the job's tag the rest). */
const MAX_CHUNKS = 255;

/** How many chunks a call of `work` is cut into for `threads` threads (1: run it on the caller alone). */
export function chunkCount({ units, unitWork }: Work, threads: number, minChunkWork = MIN_CHUNK_WORK): number {
  const worthIt = Math.floor((units * unitWork) / minChunkWork);
  return Math.max(1, Math.min(units, worthIt, threads * CHUNKS_PER_THREAD, MAX_CHUNKS));
}

/**
 * control: [generation, claim, done, kernel index, argument count, chunks, the failed thread (0:
 * none, -1: being reported), the kernel index it was running (-1: none), its message's length in
 * bytes, then per thread an asleep flag (ASLEEP + thread; the caller's is unused), then per thread
 * a chunk count (chunksRunAt)]. `claim` holds the job's tag (its generation's low 23 bits) above
 * the next unclaimed chunk's number, so a thread that read a job late cannot claim a chunk of the next one
 * (claimChunk). A worker raises its flag before it sleeps and sleeps on it; the caller lowers it to
 * wake the worker (wakeWorkers).
 */
const GENERATION = 0,
  CLAIM = 1,
  DONE = 2,
  KERNEL = 3,
  ARGC = 4,
  CHUNKS = 5,
  FAILED = 6,
  FAILED_KERNEL = 7,
  MESSAGE_LENGTH = 8,
  ASLEEP = 9;
const chunksRunAt = (threads: number) => ASLEEP + threads;
/** The control words for `threads` threads: an even count, so the arguments after them are 8-aligned for the Float64Array. */
const controlWords = (threads: number) => 2 * Math.ceil((ASLEEP + 2 * threads) / 2);
const STOP = -1;
/** The board's room for a failed worker's message (UTF-8, cut to fit), after the arguments. */
const MESSAGE_BYTES = 1024;

/**
 * Spins up to `spins` loads while control[index] is `value`; whether it changed. Layers follow each
 * other within microseconds and waking a thread from Atomics.wait costs about 100 µs here, so a
 * short spin keeps the threads hot during an inference; sleeping after it lets the OS run a thread
 * that holds a chunk on this core when another process keeps the other cores busy.
 * Self-contained: the workers get its source (as the functions below).
 */
function spinWhile(control: Int32Array, index: number, value: number, spins: number): boolean {
  for (let spin = 0; spin < spins; spin++) if (Atomics.load(control, index) !== value) return true;
  return false;
}

/** The caller's wait until control[index] is no longer `value`: spin, then sleep. */
function awaitChange(control: Int32Array, index: number, value: number, spins: number): void {
  if (!spinWhile(control, index, value, spins)) Atomics.wait(control, index, value);
}

/**
 * A worker's wait for the next job after `seen`: spin, then raise its flag (control[flag]) and
 * sleep on it until the caller lowers it. The job is looked at again after the flag is up: a job
 * posted in between found the worker awake and did not wake it.
 */
function awaitJob(control: Int32Array, seen: number, spins: number, flag: number): void {
  // Literal index 0: GENERATION, as in claimChunk.
  if (spinWhile(control, 0, seen, spins)) return;
  Atomics.store(control, flag, 1);
  if (Atomics.load(control, 0) !== seen) Atomics.store(control, flag, 0);
  else Atomics.wait(control, flag, 1);
}

/**
 * The next unclaimed chunk of the job tagged `tag` (bits 8 and up), or -1 when none is left or the
 * board has moved on to another job. A successful claim also proves the job's arguments were still
 * on the board when this thread read them: the caller changes the tag before it writes the next job.
 */
function claimChunk(control: Int32Array, tag: number, chunks: number): number {
  // Literal indexes (1: CLAIM, 2: DONE below): the workers get these functions' source alone.
  for (;;) {
    const word = Atomics.load(control, 1);
    if ((word & ~0xff) !== tag || (word & 0xff) >= chunks) return -1;
    if (Atomics.compareExchange(control, 1, word, word + 1) === word) return word & 0xff;
  }
}

/** Counts a finished chunk; whoever finishes the last one wakes the caller. */
function chunkDone(control: Int32Array, chunks: number): void {
  if (Atomics.add(control, 2, 1) === chunks - 1) Atomics.notify(control, 2);
}

/**
 * Records the first failure of a worker: its thread, the kernel it was running (index, -1: none),
 * its message in `text`; then lifts the done count past any call's chunks and wakes the caller,
 * which throws it (failureOf). Later failures are left out: the first one is the cause.
 */
function reportFailure(control: Int32Array, text: Uint8Array, thread: number, kernel: number, message: string): void {
  // Literal indexes (6: FAILED, 7: FAILED_KERNEL, 8: MESSAGE_LENGTH, 2: DONE), as in claimChunk.
  if (Atomics.compareExchange(control, 6, 0, -1) !== 0) return;
  const bytes = new TextEncoder().encode(message).subarray(0, text.length);
  text.set(bytes);
  Atomics.store(control, 8, bytes.length);
  Atomics.store(control, 7, kernel);
  Atomics.store(control, 6, thread);
  // More than any call's chunks (MAX_CHUNKS): the caller stops waiting.
  Atomics.add(control, 2, 1 << 16);
  Atomics.notify(control, 2);
}

/** Spins before sleeping: a worker between two kernel calls, and the caller waiting for the last chunks (~20 µs). */
const SPINS = 20000;

function tagOf(generation: number): number {
  return (generation & 0x7fffff) << 8;
}

/**
 * `fn`'s source as a declaration, reachable as `name` too. A minifier renames functions (esbuild
 * makes spinWhile `Nr`) and the calls between them alike, so the declaration keeps its own name for
 * those calls and the alias serves the loop below, which names them as written here.
 */
function declare(name: string, fn: (...args: never[]) => unknown): string {
  return fn.name === name ? fn.toString() : `${fn.toString()}\nconst ${name} = ${fn.name};`;
}

/**
 * The worker's whole program: instantiate, then claim chunks of posted jobs until told to stop. The
 * same loop runs in a Node worker thread (given its data up front) and in a Web Worker (given it by
 * message).
 */
const SERVE = `
${declare('spinWhile', spinWhile)}
${declare('awaitJob', awaitJob)}
${declare('claimChunk', claimChunk)}
${declare('chunkDone', chunkDone)}
${declare('tagOf', tagOf)}
${declare('reportFailure', reportFailure)}
function abort() {
  throw new Error(${JSON.stringify(KERNEL_ABORTED)});
}
function serve(data, ready) {
  const { board, words, thread } = data;
  const control = new Int32Array(board, 0, words);
  const text = new Uint8Array(board, 4 * words + ${8 * MAX_KERNEL_ARGS}, ${MESSAGE_BYTES});
  const running = { kernel: -1 };
  try {
    claimUntilStopped(data, control, running, ready);
  } catch (error) {
    reportFailure(control, text, thread, running.kernel, String((error && error.message) || error));
    throw error;
  }
}
function claimUntilStopped({ module, memory, board, words, thread, flag, count, kernels, failingThread }, control, running, ready) {
  const exports = new WebAssembly.Instance(module, { env: { memory, abort } }).exports;
  ready();
  const args = new Float64Array(board, 4 * words, ${MAX_KERNEL_ARGS});
  let seen = 0;
  for (;;) {
    awaitJob(control, seen, ${SPINS}, flag);
    seen = Atomics.load(control, ${GENERATION});
    if (seen === ${STOP}) break;
    const chunks = control[${CHUNKS}];
    const tag = tagOf(seen);
    let call = null;
    for (let chunk = claimChunk(control, tag, chunks); chunk >= 0; chunk = claimChunk(control, tag, chunks)) {
      call ??= { kernel: exports[kernels[control[${KERNEL}]]], args: Array.from(args.subarray(0, control[${ARGC}])) };
      running.kernel = control[${KERNEL}];
      if (thread === failingThread) abort();
      call.kernel(...call.args, chunk, chunks, thread);
      running.kernel = -1;
      control[count]++;
      chunkDone(control, chunks);
    }
  }
}
`;

/**
 * What each worker is given: the compiled module, the shared memory and job board (its control
 * words, the worker's asleep flag and chunk count in them), its scratch.
 */
interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  board: SharedArrayBuffer;
  words: number;
  thread: number;
  flag: number;
  count: number;
  kernels: readonly KernelName[];
  failingThread?: number;
}

/** The pool's size, and the cores it runs on (thread-count.ts ThreadHost). */
export interface PoolOptions {
  threads: number;
  cores: number;
  minChunkWork?: number;
  /** A worker that aborts (as a kernel does) on the first chunk it claims: tests of a failing worker. @internal */
  failingThread?: number;
}

/**
 * `threads - 1` workers (Node worker_threads, or Web Workers in browsers) plus the calling thread.
 * Sleeping workers are woken for a job, lowest thread first, until `cores - 1` are awake: with more
 * threads than cores, threads taking turns on a core would hold chunks while descheduled and spin
 * where another has work, so the extra workers sleep, and the same ones are woken every time.
 */
export async function threadPool(
  kernels: KernelExports,
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  { threads, cores, minChunkWork = MIN_CHUNK_WORK, failingThread }: PoolOptions,
): Promise<Dispatch> {
  const words = controlWords(threads);
  const board = new SharedArrayBuffer(4 * words + 8 * MAX_KERNEL_ARGS + MESSAGE_BYTES);
  const control = new Int32Array(board, 0, words);
  const args = new Float64Array(board, 4 * words, MAX_KERNEL_ARGS);
  const text = new Uint8Array(board, 4 * words + 8 * MAX_KERNEL_ARGS, MESSAGE_BYTES);
  const counts = chunksRunAt(threads);
  const data = Array.from(
    { length: threads - 1 },
    (_, i): WorkerData => ({
      module,
      memory,
      board,
      words,
      thread: i + 1,
      flag: ASLEEP + i + 1,
      count: counts + i + 1,
      kernels: KERNEL_NAMES,
      ...(failingThread === undefined ? {} : { failingThread }),
    }),
  );
  // A worker that dies without reporting (an exit, an error outside its loop) is reported for it.
  const failed = (thread: number, message: string) => reportFailure(control, text, thread, -1, message);
  const stopWorkers = isNode() ? nodeWorkers(data, failed) : await webWorkers(data, failed);
  const throwIfFailed = () => {
    if (Atomics.load(control, FAILED) <= 0) return;
    stopWorkers();
    throw failureOf(control, text);
  };
  /** The threads that run at once: the chunks are cut for them. */
  const running = Math.min(threads, cores);
  const wakeable = running - 1;
  let generation = 0;
  return {
    threads,
    run(kernel, values, work) {
      throwIfFailed();
      // A call that no worker will join (none awake, none to wake: a host of one core) runs whole.
      const alone = wakeable === 0 && awake(control, threads) === 0;
      const chunks = alone ? 1 : chunkCount(work, running, minChunkWork);
      if (chunks === 1) {
        invoke(kernels, kernel, values, 0, 1, 0);
        control[counts]++;
        return;
      }
      generation = generation === 0x7fffffff ? 1 : generation + 1;
      const tag = tagOf(generation);
      // The new tag first: a worker still holding the last job's arguments can no longer claim.
      Atomics.store(control, CLAIM, tag);
      args.set(values);
      control[KERNEL] = KERNEL_NAMES.indexOf(kernel);
      control[ARGC] = values.length;
      control[CHUNKS] = chunks;
      Atomics.store(control, DONE, 0);
      Atomics.store(control, GENERATION, generation);
      wakeWorkers(control, threads, wakeable);
      for (let chunk = claimChunk(control, tag, chunks); chunk >= 0; chunk = claimChunk(control, tag, chunks)) {
        invoke(kernels, kernel, values, chunk, chunks, 0);
        control[counts]++;
        chunkDone(control, chunks);
      }
      for (let done = Atomics.load(control, DONE); done < chunks; done = Atomics.load(control, DONE)) {
        awaitChange(control, DONE, done, SPINS);
      }
      throwIfFailed();
    },
    stats: () => ({
      chunksRun: Array.from(control.subarray(counts, counts + threads)),
      awake: awake(control, threads),
    }),
    close() {
      Atomics.store(control, GENERATION, STOP);
      wakeWorkers(control, threads, threads - 1);
      stopWorkers();
    },
  };
}

/** The error a failed worker left on the board (reportFailure). */
function failureOf(control: Int32Array, text: Uint8Array): ThreadFailureError {
  const kernel = KERNEL_NAMES[Atomics.load(control, FAILED_KERNEL)];
  // A copy: TextDecoder does not read shared memory.
  const message = new TextDecoder().decode(text.slice(0, Atomics.load(control, MESSAGE_LENGTH)));
  return new ThreadFailureError(Atomics.load(control, FAILED), kernel, message);
}

/** Workers whose asleep flag is down. */
function awake(control: Int32Array, threads: number): number {
  let count = 0;
  for (let thread = 1; thread < threads; thread++) if (Atomics.load(control, ASLEEP + thread) === 0) count++;
  return count;
}

/** Lowers sleeping workers' flags, lowest thread first, until `wanted` are awake, and wakes them. */
function wakeWorkers(control: Int32Array, threads: number, wanted: number): void {
  let count = awake(control, threads);
  for (let thread = 1; thread < threads && count < wanted; thread++) {
    if (Atomics.compareExchange(control, ASLEEP + thread, 1, 0) !== 1) continue;
    Atomics.notify(control, ASLEEP + thread);
    count++;
  }
}

/** Told of a worker that failed where it could not report it itself: its thread and what happened. */
type FailureListener = (thread: number, message: string) => void;

/**
 * Node: worker threads start on their own, so the pool is usable at once. The evaluated source
 * inherits the parent's flags, so under `--input-type=module` it is an ES module, where `require`
 * does not exist: process.getBuiltinModule works in both. Stopping the workers is no failure.
 */
function nodeWorkers(data: WorkerData[], failed: FailureListener): () => void {
  // Not import(), for the browser bundle that Node runs too (thread-count.ts cores).
  const { Worker } = process.getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads');
  const source = `${SERVE}\nserve(process.getBuiltinModule('node:worker_threads').workerData, () => {});`;
  let stopped = false;
  const workers = data.map((workerData) => {
    const worker = new Worker(source, { eval: true, workerData });
    worker.unref();
    worker.on('error', (error) => failed(workerData.thread, error.message));
    worker.on('exit', (code) => stopped || failed(workerData.thread, `the worker exited (code ${code})`));
    return worker;
  });
  return () => {
    stopped = true;
    workers.forEach((worker) => void worker.terminate());
  };
}

/**
 * Browsers: Web Workers from a Blob of the same loop. The calling thread blocks in Atomics.wait,
 * which only workers may do, and a browser may not start a worker while its creator is blocked: so
 * the pool is created from a Web Worker (thread-count.ts obstacle checks it), and waits until each
 * worker has its instance.
 */
async function webWorkers(data: WorkerData[], failed: FailureListener): Promise<() => void> {
  const main = `onmessage = (event) => { onmessage = null; serve(event.data, () => postMessage('ready')); };`;
  const url = URL.createObjectURL(new Blob([SERVE, main], { type: 'text/javascript' }));
  const workers = data.map(() => new Worker(url));
  try {
    await Promise.all(workers.map((worker, i) => started(worker, data[i])));
  } catch (error) {
    workers.forEach((worker) => worker.terminate());
    throw error;
  } finally {
    URL.revokeObjectURL(url);
  }
  workers.forEach((worker, i) => {
    worker.onerror = (event) => failed(data[i].thread, event.message);
    worker.onmessageerror = () => failed(data[i].thread, 'a message from the worker could not be read');
  });
  return () => workers.forEach((worker) => worker.terminate());
}

/** Posts the worker its data; resolves once it has instantiated the kernels. */
function started(worker: Worker, data: WorkerData): Promise<void> {
  return new Promise((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (event) => reject(new ResnetWasmError(`a worker thread failed to start: ${event.message}`));
    worker.postMessage(data);
  });
}
