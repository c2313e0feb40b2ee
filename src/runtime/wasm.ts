import {
  kernelsBase64,
  kernelsRelaxedBase64,
  kernelsRelaxedThreadsBase64,
  kernelsThreadsBase64,
} from '../../build/kernels.js';
import { ResnetWasmError } from '../errors.ts';
import type { PreprocessKernels } from '../image/resample.ts';
import { hasFastInt8Dot } from './cpu.ts';
import type { KernelFunction, KernelName } from './kernels.ts';
import { probeRelaxedSimd } from './relaxed-probe.ts';

/**
 * The exports of assembly/index.ts: the kernels of the table (kernels.ts), the input resampler and
 * two queries. Every pointer is a byte offset into the memory the module imports.
 * @internal
 */
export type KernelExports = PreprocessKernels & { readonly [K in KernelName]: KernelFunction<K> } & {
  heapBase(): number;
  largestFilterNorm(params: number, cin: number, cout: number, c0: number, c1: number): number;
};

/**
 * Which compilation of assembly/ runs: `baseline` (SIMD128) or `relaxed` (relaxed SIMD's int8 dot
 * in the direct conv and fc kernels, assembly/mac.ts). Both give the same bits.
 */
export type KernelBuild = 'baseline' | 'relaxed';

/**
 * A build, or `auto`: relaxed where the engine runs it exactly (probeRelaxedSimd) on a CPU with a
 * fast int8 dot (hasFastInt8Dot: arm64 with dotprod; elsewhere it is slower), else baseline.
 */
export type KernelChoice = KernelBuild | 'auto';

/** The relaxed build was asked for where the engine cannot run it exactly. */
export class KernelBuildError extends ResnetWasmError {
  constructor(message: string) {
    super(message);
    this.name = 'KernelBuildError';
  }
}

let relaxedVerdict: Promise<string | null> | undefined;

/** The build to run for `choice`; the probe runs once per process. */
export async function chooseKernelBuild(choice: KernelChoice = 'auto'): Promise<KernelBuild> {
  if (choice === 'baseline') return 'baseline';
  relaxedVerdict ??= probeRelaxedSimd();
  const problem = await relaxedVerdict;
  if (choice === 'relaxed' && problem !== null)
    throw new KernelBuildError(`kernels: 'relaxed' cannot run here: ${problem}`);
  if (choice === 'relaxed') return 'relaxed';
  return problem === null && (await hasFastInt8Dot()) ? 'relaxed' : 'baseline';
}

const BUILDS: Record<KernelBuild, Record<'single' | 'shared', string>> = {
  baseline: { single: kernelsBase64, shared: kernelsThreadsBase64 },
  relaxed: { single: kernelsRelaxedBase64, shared: kernelsRelaxedThreadsBase64 },
};

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** Compiles a build once per process: `shared` is the one on a shared memory, for threads. @internal */
export function kernelModule(shared: boolean, build: KernelBuild = 'baseline'): Promise<WebAssembly.Module> {
  const memory = shared ? 'shared' : 'single';
  let module = modules.get(`${build} ${memory}`);
  if (!module) {
    module = WebAssembly.compile(decodeBase64(BUILDS[build][memory]));
    modules.set(`${build} ${memory}`, module);
  }
  return module;
}

/** @internal */
export async function instantiateKernels(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(module, kernelImports(memory));
  return instance.exports as unknown as KernelExports;
}

/** What the module imports; the same object works in worker threads. @internal */
export function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return { env: { memory, abort: abortFromWasm } };
}

const PAGE = 65536;

/** A memory of exactly `bytes` (rounded up to pages): everything is sized before it is created. @internal */
export function createMemory(bytes: number, shared: boolean): WebAssembly.Memory {
  const pages = Math.ceil(bytes / PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
}

/** What a kernel's abort says, on the calling thread as in a worker (threads.ts). @internal */
export const KERNEL_ABORTED = 'resnet-wasm kernel aborted (a bug: kernels are built without assertions)';

function abortFromWasm(): never {
  throw new Error(KERNEL_ABORTED);
}

/** @internal */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
