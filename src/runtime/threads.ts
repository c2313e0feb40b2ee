/**
 * Running a layer on several threads that share one wasm memory. Each thread holds its own
 * instance of the threads build; the calling thread posts a kernel call on a small shared job
 * board, wakes the workers, does slice 0 itself and waits until every worker has done its slice
 * (Atomics.wait / notify). One job per kernel call, so layers run in order. Workers are Node
 * worker_threads, or in browsers Web Workers started from a Blob of the same program.
 */
import { ResnetWasmError } from '../errors.ts';
import { invoke, KERNEL_NAMES, type KernelName, MAX_KERNEL_ARGS, type SlicedKernel } from './kernels.ts';
import type { KernelExports } from './wasm.ts';

export interface Dispatch {
  readonly parts: number;
  /** Runs a kernel on every part; `args` in the table's order (kernels.ts argumentList). */
  run(kernel: SlicedKernel, args: readonly number[]): void;
  close(): void;
}

export function singleThread(kernels: KernelExports): Dispatch {
  return {
    parts: 1,
    run: (kernel, args) => invoke(kernels, kernel, args, 0, 1),
    close: () => {},
  };
}

/** control: [generation, done, kernel index, argument count] */
const GENERATION = 0,
  DONE = 1,
  KERNEL = 2,
  ARGC = 3;
const STOP = -1;

/**
 * Waits until control[index] is no longer `value`. It spins first: layers follow each other within
 * microseconds, and waking a thread from Atomics.wait costs about 100 µs here, which over ResNet-18's
 * ~40 kernel calls would be 4 ms of an 18 ms inference. After ~1 ms of spinning (idle between
 * inferences) it sleeps. Self-contained: the workers get its source (bound to this name even when a
 * minifier renames it).
 */
function awaitChange(control: Int32Array, index: number, value: number): void {
  for (let spin = 0; spin < 200000; spin++) if (Atomics.load(control, index) !== value) return;
  Atomics.wait(control, index, value);
}

/**
 * The worker's whole program: instantiate, then run posted slices until told to stop. The same loop
 * runs in a Node worker thread (given its data up front) and in a Web Worker (given it by message).
 */
const SERVE = `
const awaitChange = ${awaitChange.toString()};
function serve({ module, memory, board, part, parts, kernels }, ready) {
  const exports = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('kernel aborted'); } } }).exports;
  ready();
  const control = new Int32Array(board, 0, 4);
  const args = new Float64Array(board, 16, ${MAX_KERNEL_ARGS});
  let seen = 0;
  for (;;) {
    awaitChange(control, ${GENERATION}, seen);
    seen = Atomics.load(control, ${GENERATION});
    if (seen === ${STOP}) break;
    exports[kernels[control[${KERNEL}]]](...args.subarray(0, control[${ARGC}]), part, parts);
    Atomics.add(control, ${DONE}, 1);
    Atomics.notify(control, ${DONE});
  }
}
`;

/** What each worker is given: the compiled module, the shared memory and job board, its slice. */
interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  board: SharedArrayBuffer;
  part: number;
  parts: number;
  kernels: readonly KernelName[];
}

/** `parts - 1` workers (Node worker_threads, or Web Workers in browsers) plus the calling thread. */
export async function threadPool(
  kernels: KernelExports,
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  parts: number,
): Promise<Dispatch> {
  const board = new SharedArrayBuffer(16 + 8 * MAX_KERNEL_ARGS);
  const control = new Int32Array(board, 0, 4);
  const args = new Float64Array(board, 16, MAX_KERNEL_ARGS);
  const data = Array.from(
    { length: parts - 1 },
    (_, i): WorkerData => ({ module, memory, board, part: i + 1, parts, kernels: KERNEL_NAMES }),
  );
  const stopWorkers = isNode() ? await nodeWorkers(data) : await webWorkers(data);
  let generation = 0;
  return {
    parts,
    run(kernel, values) {
      args.set(values);
      control[KERNEL] = KERNEL_NAMES.indexOf(kernel);
      control[ARGC] = values.length;
      Atomics.store(control, DONE, 0);
      generation = generation === 0x7fffffff ? 1 : generation + 1;
      Atomics.store(control, GENERATION, generation);
      Atomics.notify(control, GENERATION);
      invoke(kernels, kernel, values, 0, parts);
      for (let done = Atomics.load(control, DONE); done < parts - 1; done = Atomics.load(control, DONE)) {
        awaitChange(control, DONE, done);
      }
    },
    close() {
      Atomics.store(control, GENERATION, STOP);
      Atomics.notify(control, GENERATION);
      stopWorkers();
    },
  };
}

function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node !== undefined;
}

/** Node: worker threads start on their own, so the pool is usable at once. */
async function nodeWorkers(data: WorkerData[]): Promise<() => void> {
  const { Worker } = await import('node:worker_threads');
  const source = `${SERVE}\nserve(require('node:worker_threads').workerData, () => {});`;
  const workers = data.map((workerData) => {
    const worker = new Worker(source, { eval: true, workerData });
    worker.unref();
    return worker;
  });
  return () => workers.forEach((worker) => void worker.terminate());
}

/**
 * Browsers: Web Workers from a Blob of the same loop. The calling thread blocks in Atomics.wait,
 * which only workers may do, and a browser may not start a worker while its creator is blocked: so
 * the pool needs to be created from a Web Worker, and waits until each worker has its instance.
 */
async function webWorkers(data: WorkerData[]): Promise<() => void> {
  const scope = globalThis as { WorkerGlobalScope?: unknown; crossOriginIsolated?: boolean };
  if (scope.WorkerGlobalScope === undefined || scope.crossOriginIsolated !== true) {
    throw new ResnetWasmError(
      'threads > 1 in a browser need the model to run in a Web Worker of a cross-origin isolated page ' +
        '(COOP/COEP headers, so that memory can be shared): load it with threads: 1 otherwise',
    );
  }
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
