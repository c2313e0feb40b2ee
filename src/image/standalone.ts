/**
 * A kernel instance of its own, on a memory that grows as needed, for preprocessing outside a
 * network: the float input of the fp32 reference and of calibration, and resizes for their own
 * sake. A network's input is written by its own instance, in place (src/runtime/model.ts). Compiled
 * synchronously, so that these functions stay synchronous: fine in Node and in workers (a browser's
 * main thread allows it only for tiny modules).
 */
import { kernelsBase64 } from '../../build/kernels.js';
import { kernelImports } from '../runtime/wasm.ts';
import type { PreprocessKernels, ResampleSite } from './resample.ts';

const PAGE = 65536;

interface Instance {
  kernels: PreprocessKernels & { heapBase(): number };
  memory: WebAssembly.Memory;
}

let instance: Instance | undefined;

function kernelInstance(): Instance {
  if (!instance) {
    const module = new WebAssembly.Module(Uint8Array.from(atob(kernelsBase64), (c) => c.charCodeAt(0)));
    const memory = new WebAssembly.Memory({ initial: 1 });
    const kernels = new WebAssembly.Instance(module, kernelImports(memory)).exports as unknown as Instance['kernels'];
    instance = { kernels, memory };
  }
  return instance;
}

/** A site with `scratchBytes` of scratch, and where to write `outputBytes` of output; `read` copies the output out. */
export function standaloneSite(
  scratchBytes: number,
  outputBytes: number,
): { site: ResampleSite; output: number; read: () => Uint8Array } {
  const { kernels, memory } = kernelInstance();
  const output = kernels.heapBase();
  const scratch = output + Math.ceil(outputBytes / 16) * 16 + 16;
  const missing = scratch + scratchBytes - memory.buffer.byteLength;
  if (missing > 0) memory.grow(Math.ceil(missing / PAGE));
  const read = () => new Uint8Array(memory.buffer.slice(output, output + outputBytes));
  return { site: { kernels, memory, scratch, scratchBytes }, output, read };
}
