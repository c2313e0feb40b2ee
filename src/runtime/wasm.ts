import { kernelsBase64, kernelsThreadsBase64 } from '../../build/kernels.js';

/**
 * The kernel exports of assembly/index.ts. Every pointer is a byte offset into the memory the
 * module imports; every kernel that writes a tensor takes (part, parts) last and does the part-th
 * slice of its work (assembly/parts.ts), so threads can share a layer.
 */
export interface KernelExports {
  heapBase(): number;
  conv(
    input: number, inH: number, inW: number, inC: number, zx: number,
    params: number, outC: number, kh: number, kw: number, stride: number, pad: number,
    output: number, outH: number, outW: number, zo: number, lo: number,
    padRow: number, part: number, parts: number,
  ): void;
  maxpool(
    input: number, inH: number, inW: number, channels: number,
    output: number, outH: number, outW: number, k: number, stride: number, pad: number, part: number, parts: number,
  ): void;
  gap(input: number, pixels: number, channels: number, zx: number, output: number, multiplier: number, zo: number, part: number, parts: number): void;
  avgpool(
    input: number, inH: number, inW: number, channels: number,
    output: number, outH: number, outW: number, k: number, stride: number, pad: number, part: number, parts: number,
  ): void;
  affine(input: number, pixels: number, channels: number, zx: number, params: number, output: number, zo: number, lo: number, part: number, parts: number): void;
  add(
    a: number, za: number, multA: number, b: number, zb: number, multB: number,
    output: number, count: number, zo: number, lo: number, part: number, parts: number,
  ): void;
  fc(input: number, inC: number, params: number, outC: number, output: number, part: number, parts: number): void;
  winogradWeights(params: number, cin: number, cout: number, zx: number, out: number): void;
  winogradInput(
    input: number, inH: number, inW: number, inC: number, zx: number, v: number, tilesH: number, tilesW: number, part: number, parts: number,
  ): void;
  winogradConv(
    v: number, tilesH: number, tilesW: number, inC: number,
    u: number, outC: number, output: number, outH: number, outW: number, zo: number, lo: number, products: number,
    part: number, parts: number,
  ): void;
  patches(
    input: number, inH: number, inW: number, inC: number, zx: number,
    kh: number, kw: number, stride: number, pad: number,
    output: number, outH: number, outW: number, rowBytes: number, part: number, parts: number,
  ): void;
}

/** The kernels that a layer's work is split into parts for. */
export type SlicedKernel = Exclude<keyof KernelExports, 'heapBase' | 'winogradWeights'>;

const modules = new Map<boolean, Promise<WebAssembly.Module>>();

/** Compiles a build once per process: `shared` is the threads build, on a shared memory. */
export function kernelModule(shared: boolean): Promise<WebAssembly.Module> {
  let module = modules.get(shared);
  if (!module) {
    module = WebAssembly.compile(decodeBase64(shared ? kernelsThreadsBase64 : kernelsBase64));
    modules.set(shared, module);
  }
  return module;
}

export async function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(module, kernelImports(memory));
  return instance.exports as unknown as KernelExports;
}

/** What the module imports; the same object works in worker threads. */
export function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return { env: { memory, abort: abortFromWasm } };
}

const PAGE = 65536;

/** A memory of exactly `bytes` (rounded up to pages): everything is sized before it is created. */
export function createMemory(bytes: number, shared: boolean): WebAssembly.Memory {
  const pages = Math.ceil(bytes / PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
}

function abortFromWasm(): never {
  throw new Error('resnet-wasm kernel aborted (a bug: kernels are built without assertions)');
}

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
