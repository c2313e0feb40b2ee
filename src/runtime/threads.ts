/**
 * Running a layer on several threads that share one wasm memory. Each thread holds its own
 * instance of the threads build; the calling thread posts a kernel call on a small shared job
 * board, wakes the workers, does slice 0 itself and waits until every worker has done its slice
 * (Atomics.wait / notify). One job per kernel call, so layers run in order.
 */
import type { KernelExports, SlicedKernel } from './wasm.ts';

export interface Dispatch {
  readonly parts: number;
  run(kernel: SlicedKernel, args: number[]): void;
  close(): void;
}

export function singleThread(kernels: KernelExports): Dispatch {
  return {
    parts: 1,
    run: (kernel, args) => (kernels[kernel] as (...a: number[]) => void)(...args, 0, 1),
    close: () => {},
  };
}

const KERNELS: SlicedKernel[] = ['conv', 'maxpool', 'gap', 'add', 'fc', 'winogradInput', 'winogradConv', 'patches'];
const MAX_ARGS = 24;
/** control: [generation, done, kernel index, argument count] */
const GENERATION = 0, DONE = 1, KERNEL = 2, ARGC = 3;
const STOP = -1;

/** The worker's whole program: instantiate, then run posted slices until told to stop. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, board, part, parts, kernels } = workerData;
const exports = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('kernel aborted'); } } }).exports;
const control = new Int32Array(board, 0, 4);
const args = new Float64Array(board, 16, ${MAX_ARGS});
let seen = 0;
for (;;) {
  Atomics.wait(control, ${GENERATION}, seen);
  seen = Atomics.load(control, ${GENERATION});
  if (seen === ${STOP}) break;
  exports[kernels[control[${KERNEL}]]](...args.subarray(0, control[${ARGC}]), part, parts);
  Atomics.add(control, ${DONE}, 1);
  Atomics.notify(control, ${DONE});
}
`;

/** Node: `parts - 1` worker_threads plus the calling thread. */
export async function threadPool(kernels: KernelExports, module: WebAssembly.Module, memory: WebAssembly.Memory, parts: number): Promise<Dispatch> {
  const { Worker } = await import('node:worker_threads');
  const board = new SharedArrayBuffer(16 + 8 * MAX_ARGS);
  const control = new Int32Array(board, 0, 4);
  const args = new Float64Array(board, 16, MAX_ARGS);
  const workers = Array.from({ length: parts - 1 }, (_, i) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, board, part: i + 1, parts, kernels: KERNELS } });
    worker.unref();
    return worker;
  });
  let generation = 0;
  return {
    parts,
    run(kernel, values) {
      args.set(values);
      control[KERNEL] = KERNELS.indexOf(kernel);
      control[ARGC] = values.length;
      Atomics.store(control, DONE, 0);
      generation = generation === 0x7fffffff ? 1 : generation + 1;
      Atomics.store(control, GENERATION, generation);
      Atomics.notify(control, GENERATION);
      (kernels[kernel] as (...a: number[]) => void)(...values, 0, parts);
      for (let done = Atomics.load(control, DONE); done < parts - 1; done = Atomics.load(control, DONE)) {
        Atomics.wait(control, DONE, done);
      }
    },
    close() {
      Atomics.store(control, GENERATION, STOP);
      Atomics.notify(control, GENERATION);
      for (const worker of workers) void worker.terminate();
    },
  };
}
