import { kernelsBase64 } from '../../build/kernels.js';

/** The kernel exports of assembly/index.ts; every pointer is a byte offset into `memory`. */
export interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  conv(
    input: number, inH: number, inW: number, inC: number, zx: number,
    params: number, outC: number, kh: number, kw: number, stride: number, pad: number,
    output: number, outH: number, outW: number, zo: number, lo: number,
    padRow: number,
  ): void;
  maxpool(
    input: number, inH: number, inW: number, channels: number,
    output: number, outH: number, outW: number, k: number, stride: number, pad: number,
  ): void;
  gap(input: number, pixels: number, channels: number, zx: number, output: number, multiplier: number, zo: number): void;
  add(a: number, za: number, multA: number, b: number, zb: number, multB: number, output: number, count: number, zo: number, lo: number): void;
  fc(input: number, inC: number, params: number, outC: number, output: number): void;
  winogradWeights(params: number, cin: number, cout: number, zx: number, out: number): void;
  winogradInput(input: number, inH: number, inW: number, inC: number, zx: number, v: number, tilesH: number, tilesW: number): void;
  winogradConv(
    v: number, tilesH: number, tilesW: number, inC: number,
    u: number, outC: number, output: number, outH: number, outW: number, zo: number, lo: number, m: number,
  ): void;
  patches(
    input: number, inH: number, inW: number, inC: number, zx: number,
    kh: number, kw: number, stride: number, pad: number,
    output: number, outH: number, outW: number, rowBytes: number,
  ): void;
}

let compiled: Promise<WebAssembly.Module> | undefined;

/** Compiles the kernels once per process; every model gets its own instance and memory. */
function kernelsModule(): Promise<WebAssembly.Module> {
  compiled ??= WebAssembly.compile(decodeBase64(kernelsBase64));
  return compiled;
}

export async function instantiateKernels(): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(await kernelsModule(), { env: { abort: abortFromWasm } });
  return instance.exports as unknown as KernelExports;
}

/** Grows `memory` so that it holds at least `bytes` bytes. */
export function ensureMemory(memory: WebAssembly.Memory, bytes: number): void {
  const page = 65536;
  const missing = Math.ceil((bytes - memory.buffer.byteLength) / page);
  if (missing > 0) memory.grow(missing);
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
