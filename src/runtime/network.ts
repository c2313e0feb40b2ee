import { CIN_BLOCK, roundUp } from '../format/layout.ts';
import type { LayerHeader, NetworkHeader, QuantTensor } from '../model/types.ts';
import { outputTensor } from '../model/types.ts';
import { checkThreads, type ThreadsChoice } from '../options/validate.ts';
import {
  type ConvLayer,
  type ConvPath,
  convPath,
  gemmBlocking,
  patchRowBytes,
  patchRowsGemm,
  planWinograd,
  tapsDepth,
  type WinogradPlan,
  winogradTiles,
} from './conv-path.ts';
import {
  argumentList,
  invoke,
  type KernelArgs,
  type KernelName,
  type SlicedKernel,
  WORK,
  type Work,
} from './kernels.ts';
import { type MemoryLayout, planMemory } from './memory-plan.ts';
import { threadCount, threadHost } from './thread-count.ts';
import { type Dispatch, singleThread, type ThreadStats, threadPool } from './threads.ts';
import {
  chooseKernelBuild,
  createMemory,
  instantiateKernels,
  type KernelBuild,
  type KernelChoice,
  type KernelExports,
  kernelModule,
} from './wasm.ts';

/** Where a network's wasm memory goes. */
export interface MemoryFootprint {
  /** Size of the wasm memory. */
  wasmBytes: number;
  /** Packed parameter bytes kept as they came (weights, biases, multipliers), staging included. */
  parameterBytes: number;
  /** Parameters derived at load: Winograd's unfolded biases. */
  derivedBytes: number;
  /** Peak activation bytes: the arena. */
  arenaBytes: number;
}

export interface NetworkOptions {
  /** Use integer Winograd where it applies (default true); false forces direct convolution. */
  winograd?: boolean;
  /**
   * Threads sharing each layer (default `auto`: the cores, at most 4; one thread, with a warning,
   * where SharedArrayBuffer, cross-origin isolation or a Web Worker is missing). An explicit count
   * above 1 where threads cannot run is an OptionError.
   */
  threads?: ThreadsChoice;
  /** The least work a chunk of a kernel call gets (threads.ts MIN_CHUNK_WORK): tests lower it to cut every call. @internal */
  minChunkWork?: number;
  /** The cores the threads run on (default: the host's, thread-count.ts): tests give fewer than the threads. @internal */
  cores?: number;
  /** A worker thread that aborts on its first chunk (threads.ts PoolOptions): tests of a failing worker. @internal */
  failingThread?: number;
  /** Run unpadded 1x1 convs as a GEMM and other non-Winograd convs as a GEMM over their taps (default true); false runs them on the direct kernel. Same bits either way. */
  gemm?: boolean;
  /** Which kernel build runs (default `auto`: relaxed SIMD where it runs exactly, off x86; chooseKernelBuild). Same bits either way. */
  kernels?: KernelChoice;
}

/**
 * What a Network does to its memory, in order: how `resnet-wasm wasi-plan` records a network for a
 * host without JavaScript to replay (src/cli/wasi-plan.ts). Offsets are this memory's; kernel calls
 * are whole (without the trailing part, parts, thread).
 */
export type NetworkOp =
  | { op: 'memory'; base: number; end: number }
  | { op: 'parameters'; layer: number; at: number; bytes: number }
  | { op: 'input'; at: number; bytes: number }
  | { op: 'fill'; at: number; value: number; bytes: number }
  | { op: 'call'; kernel: KernelName; args: number[] }
  | { op: 'logits'; at: number; count: number };

/** A network measured before it is allocated: the kernel build, how each conv runs, its memory. */
export interface NetworkPlan {
  header: NetworkHeader;
  payloadBytes: number[];
  build: KernelBuild;
  threads: number;
  /** The cores the threads run on (threads.ts threadPool). */
  cores: number;
  /** The least work a chunk of a kernel call gets (threads.ts): tests lower it to cut every call. @internal */
  minChunkWork?: number;
  /** A worker thread that aborts on its first chunk (threads.ts PoolOptions). @internal */
  failingThread?: number;
  paths: (ConvPath | null)[];
  layout: MemoryLayout;
}

/** What writes a network's input in place: tensor 0 (`bytes` at `at`) and a scratch area beside it. @internal */
export interface InputTarget {
  memory: WebAssembly.Memory;
  kernels: KernelExports;
  at: number;
  bytes: number;
  scratch: number;
  scratchBytes: number;
}

/**
 * A network placed in one wasm instance's memory (memory-plan.ts lays it out) and the layer
 * executor: each layer is one or two kernel calls (kernels.ts), split over the threads.
 * @internal
 */
export class Network {
  readonly header: NetworkHeader;
  readonly footprint: MemoryFootprint;
  /** The kernel build this network runs on. */
  readonly kernelBuild: KernelBuild;
  private readonly memory: WebAssembly.Memory;
  private readonly kernels: KernelExports;
  private readonly dispatch: Dispatch;
  private readonly layout: MemoryLayout;
  private readonly paths: (ConvPath | null)[];
  /** Each Winograd layer's plan, made when its weights arrive. */
  private readonly winograd = new Map<number, WinogradPlan>();
  private readonly paramBytes: number[];
  private readonly trace: ((op: NetworkOp) => void) | undefined;

  private constructor(
    plan: NetworkPlan,
    memory: WebAssembly.Memory,
    kernels: KernelExports,
    dispatch: Dispatch,
    trace?: (op: NetworkOp) => void,
  ) {
    this.header = plan.header;
    this.paramBytes = plan.payloadBytes;
    this.paths = plan.paths;
    this.layout = plan.layout;
    this.memory = memory;
    this.kernels = kernels;
    this.dispatch = dispatch;
    this.kernelBuild = plan.build;
    this.trace = trace;
    const { parameterBytes, derivedBytes, arenaBytes } = plan.layout;
    this.footprint = { wasmBytes: memory.buffer.byteLength, parameterBytes, derivedBytes, arenaBytes };
  }

  /**
   * Measures a network whose layer payloads have the given byte lengths: what `allocate` will ask
   * for, known before anything is allocated (the loader checks it against MAX_WASM_BYTES).
   */
  static async plan(header: NetworkHeader, payloadBytes: number[], options: NetworkOptions = {}): Promise<NetworkPlan> {
    const host = threadHost();
    const threads = threadCount(checkThreads(options.threads), host);
    const build = await chooseKernelBuild(options.kernels);
    const paths = header.layers.map((l) =>
      l.kind === 'conv' ? convPath(l, { winograd: options.winograd !== false, gemm: options.gemm !== false }) : null,
    );
    const layout = planMemory(header, payloadBytes, paths, await heapBase(build), threads);
    const { minChunkWork, failingThread, cores = host.cores } = options;
    return { header, payloadBytes, build, threads, cores, minChunkWork, failingThread, paths, layout };
  }

  /** Allocates the memory of a plan and instantiates its kernels. `trace` is told every operation on the memory from then on. */
  static async allocate(plan: NetworkPlan, trace?: (op: NetworkOp) => void): Promise<Network> {
    const { build, threads, cores, layout, minChunkWork, failingThread } = plan;
    const module = await kernelModule(threads > 1, build);
    const memory = createMemory(layout.wasmBytes, threads > 1);
    const kernels = await instantiateKernels(module, memory);
    const dispatch =
      threads > 1
        ? await threadPool(kernels, module, memory, { threads, cores, minChunkWork, failingThread })
        : singleThread(kernels);
    trace?.({ op: 'memory', base: await heapBase(build), end: layout.totalBytes });
    return new Network(plan, memory, kernels, dispatch, trace);
  }

  /** Plans and allocates a network whose layer payloads have the given byte lengths. */
  static async create(
    header: NetworkHeader,
    payloadBytes: number[],
    options: NetworkOptions = {},
    trace?: (op: NetworkOp) => void,
  ): Promise<Network> {
    return Network.allocate(await Network.plan(header, payloadBytes, options), trace);
  }

  /** Threads sharing each layer. */
  get threads(): number {
    return this.dispatch.threads;
  }

  /** How the threads have shared the work so far (tests, benchmarks). @internal */
  threadStats(): ThreadStats {
    return this.dispatch.stats();
  }

  /** Stops the worker threads; the network cannot run afterwards. */
  close(): void {
    this.dispatch.close();
  }

  /** Places layer `index`'s record payload and derives what its kernel needs from it. */
  setParameters(index: number, payload: Uint8Array): void {
    if (payload.length !== this.paramBytes[index]) {
      throw new RangeError(`layer ${index}: payload of ${payload.length} bytes, expected ${this.paramBytes[index]}`);
    }
    const at = this.layout.paramOffsets[index];
    new Uint8Array(this.memory.buffer).set(payload, at);
    this.trace?.({ op: 'parameters', layer: index, at, bytes: payload.length });
    const derived = this.layout.derivedOffsets.get(index);
    const layer = this.header.layers[index];
    if (derived !== undefined && layer.kind === 'conv') {
      const zeroPoint = this.header.tensors[layer.input].zeroPoint;
      const args = argumentList('winogradBias', {
        params: at,
        cin: layer.cin,
        cout: layer.cout,
        zx: zeroPoint,
        out: derived,
      });
      this.trace?.({ op: 'call', kernel: 'winogradBias', args });
      invoke(this.kernels, 'winogradBias', args);
      const norm = (c0: number, c1: number) => this.kernels.largestFilterNorm(at, layer.cin, layer.cout, c0, c1);
      this.winograd.set(index, planWinograd(layer.cin, norm, zeroPoint, this.header.tensors[layer.output]));
    }
  }

  /** How each conv runs (null for other layers). */
  convPaths(): readonly (ConvPath | null)[] {
    return this.paths;
  }

  /** How Winograd layer `index` runs (known once its parameters are set), else undefined. */
  winogradPlan(index: number): WinogradPlan | undefined {
    return this.winograd.get(index);
  }

  /** Runs the network on a quantized NHWC input (tensor 0) and returns the logits. */
  run(input: Uint8Array): Float32Array {
    this.setInput(input);
    return this.forward();
  }

  /**
   * Lets `write` fill tensor 0 in place (no copy of the input), then runs the network and returns
   * the logits.
   */
  runWritten(write: (target: InputTarget) => void): Float32Array {
    this.writeInput(write);
    return this.forward();
  }

  /**
   * As runWritten, but runs only the layers up to the one that writes uint8 tensor `tensor` and
   * returns a copy of it: an embedding stops at the global average pool, before the fc.
   */
  runWrittenTo(write: (target: InputTarget) => void, tensor: number): Uint8Array {
    const last = this.header.layers.findIndex((layer) => layer.output === tensor);
    if (last < 0 || last === this.header.layers.length - 1)
      throw new RangeError(`tensor ${tensor} is not a uint8 tensor that a layer writes`);
    this.writeInput(write);
    this.header.layers.slice(0, last + 1).forEach((layer, i) => this.runLayer(layer, i));
    return this.readTensor(tensor);
  }

  /** A copy of layer `index`'s record payload as it was placed (loading copies payloads unchanged). */
  parameters(index: number): Uint8Array {
    const at = this.layout.paramOffsets[index];
    return new Uint8Array(this.memory.buffer.slice(at, at + this.paramBytes[index]));
  }

  private writeInput(write: (target: InputTarget) => void): void {
    const t0 = this.header.tensors[0];
    const { tensorOffsets, inputScratch, inputScratchBytes } = this.layout;
    const target = {
      memory: this.memory,
      kernels: this.kernels,
      at: tensorOffsets[0],
      bytes: t0.h * t0.w * t0.c,
      scratch: inputScratch,
      scratchBytes: inputScratchBytes,
    };
    write(target);
    this.trace?.({ op: 'input', at: target.at, bytes: target.bytes });
  }

  private forward(): Float32Array {
    this.header.layers.forEach((layer, i) => this.runLayer(layer, i));
    return this.logits();
  }

  /** A copy of the logits the last layer wrote. */
  logits(): Float32Array {
    const out = outputTensor(this.header);
    const at = this.layout.tensorOffsets[out];
    this.trace?.({ op: 'logits', at, count: this.header.tensors[out].c });
    return new Float32Array(this.memory.buffer.slice(at, at + 4 * this.header.tensors[out].c));
  }

  setInput(input: Uint8Array): void {
    const t0 = this.header.tensors[0];
    if (input.length !== t0.h * t0.w * t0.c) {
      throw new RangeError(`input has ${input.length} bytes, the network expects ${t0.h}x${t0.w}x${t0.c}`);
    }
    new Uint8Array(this.memory.buffer).set(input, this.layout.tensorOffsets[0]);
    this.trace?.({ op: 'input', at: this.layout.tensorOffsets[0], bytes: input.length });
  }

  /** A copy of a uint8 tensor as the last run left it (valid while no later layer reused its buffer). */
  readTensor(id: number): Uint8Array {
    const t = this.header.tensors[id];
    const at = this.layout.tensorOffsets[id];
    return new Uint8Array(this.memory.buffer.slice(at, at + t.h * t.w * t.c));
  }

  /** Overwrites uint8 tensor `id`, so layers can run on from it (a lesion study resumes a shortened network there). */
  writeTensor(id: number, data: Uint8Array): void {
    const t = this.header.tensors[id];
    if (data.length !== t.h * t.w * t.c)
      throw new RangeError(`tensor ${id} holds ${t.h}x${t.w}x${t.c} bytes, not ${data.length}`);
    new Uint8Array(this.memory.buffer).set(data, this.layout.tensorOffsets[id]);
  }

  /** Runs one layer; `profile` hooks call it to time layers one by one. */
  runLayer(layer: LayerHeader, index: number): void {
    const tensors = this.header.tensors;
    const at = this.layout.tensorOffsets;
    const out = tensors[layer.output];
    switch (layer.kind) {
      case 'conv':
        return this.runConv(layer, index);
      // Max and average pooling take the same arguments (POOL_ARGS in kernels.ts).
      case 'maxpool':
      case 'avgpool': {
        const x = tensors[layer.input];
        const { k, stride, pad } = layer;
        return this.run1(layer.kind, {
          input: at[layer.input],
          inH: x.h,
          inW: x.w,
          channels: x.c,
          output: at[layer.output],
          outH: out.h,
          outW: out.w,
          k,
          stride,
          pad,
        });
      }
      case 'affine': {
        const x = tensors[layer.input];
        return this.run1('affine', {
          input: at[layer.input],
          pixels: x.h * x.w,
          channels: x.c,
          zx: x.zeroPoint,
          params: this.layout.paramOffsets[index],
          output: at[layer.output],
          zo: out.zeroPoint,
          lo: lowerBound(out, layer.relu),
        });
      }
      case 'add': {
        const [a, b] = layer.inputs;
        return this.run1('add', {
          a: at[a],
          za: tensors[a].zeroPoint,
          multA: layer.multiplierA,
          b: at[b],
          zb: tensors[b].zeroPoint,
          multB: layer.multiplierB,
          output: at[layer.output],
          count: out.h * out.w * out.c,
          zo: out.zeroPoint,
          lo: lowerBound(out, layer.relu),
        });
      }
      case 'gap': {
        const x = tensors[layer.input];
        return this.run1('gap', {
          input: at[layer.input],
          pixels: x.h * x.w,
          channels: x.c,
          zx: x.zeroPoint,
          output: at[layer.output],
          multiplier: layer.multiplier,
          zo: out.zeroPoint,
        });
      }
      case 'fc':
        return this.run1('fc', {
          input: at[layer.input],
          inC: layer.cin,
          params: this.layout.paramOffsets[index],
          outC: layer.cout,
          output: at[layer.output],
        });
    }
  }

  private runConv(layer: ConvLayer, index: number): void {
    const { tensorOffsets, paramOffsets, derivedOffsets, scratchOffsets, padRow, products, productStride } =
      this.layout;
    const x = this.header.tensors[layer.input];
    const out = this.header.tensors[layer.output];
    const input = tensorOffsets[layer.input];
    const output = tensorOffsets[layer.output];
    const requant = { output, outH: out.h, outW: out.w, zo: out.zeroPoint, lo: lowerBound(out, layer.relu) };
    const threadScratch = { scratch: products, scratchStride: productStride };
    const scratch = scratchOffsets.get(index) ?? 0;
    const { kh, kw, stride, pad } = layer;
    const source = { inH: x.h, inW: x.w, inC: x.c, zx: x.zeroPoint };
    switch (this.paths[index]) {
      case 'winograd': {
        const { tile, chunk } = this.winograd.get(index)!;
        const [tilesH, tilesW] = winogradTiles(out, tile);
        this.run1('winogradInput', { input, ...source, v: scratch, tile, tilesH, tilesW });
        const bias = derivedOffsets.get(index)!;
        this.run1('winogradConv', {
          v: scratch,
          tile,
          chunk,
          tilesH,
          tilesW,
          inC: x.c,
          bias,
          params: paramOffsets[index],
          outC: layer.cout,
          ...requant,
          ...threadScratch,
        });
        return;
      }
      case 'patches': {
        const kp = patchRowBytes(layer);
        this.run1('patches', { input, ...source, kh, kw, stride, pad, output: scratch, outH: out.h, outW: out.w, kp });
        this.run1('gemm', {
          ...requant,
          ...patchRowsGemm(scratch, out, kp, layer.cout),
          params: paramOffsets[index],
          outC: layer.cout,
          ...threadScratch,
        });
        return;
      }
      case 'gemm': {
        this.run1('gemm', {
          input,
          inW: x.w,
          inC: x.c,
          params: paramOffsets[index],
          outC: layer.cout,
          stride,
          ...requant,
          ...gemmBlocking(x.c, out, layer.cout),
          ...threadScratch,
        });
        return;
      }
      default: {
        this.fillPadRow(x.zeroPoint, roundUp(x.c, CIN_BLOCK));
        // Both kernels read a pixel's taps, the pad row where they leave the image; gemmTaps ignores zx.
        const params = paramOffsets[index];
        const taps = {
          input,
          ...source,
          params,
          outC: layer.cout,
          kh,
          kw,
          stride,
          pad,
          ...requant,
          padRow,
          ...threadScratch,
        };
        if (this.paths[index] === 'taps')
          this.run1('gemmTaps', { ...taps, ...gemmBlocking(tapsDepth(layer), out, layer.cout) });
        else this.run1('conv', taps);
      }
    }
  }

  /** One kernel call, its work cut into chunks for the threads. */
  private run1<K extends SlicedKernel>(kernel: K, call: KernelArgs<K>): void {
    const args = argumentList(kernel, call);
    this.trace?.({ op: 'call', kernel, args });
    this.dispatch.run(kernel, args, (WORK[kernel] as (a: KernelArgs<K>) => Work)(call));
  }

  /** Taps in the padding read this row: the input's zero point, as wide as a padded pixel. */
  private fillPadRow(zeroPoint: number, bytes: number): void {
    new Uint8Array(this.memory.buffer, this.layout.padRow, bytes).fill(zeroPoint);
    this.trace?.({ op: 'fill', at: this.layout.padRow, value: zeroPoint, bytes });
  }
}

/** Where the kernels' own static data ends: the same for every instance of a build. */
async function heapBase(build: KernelBuild): Promise<number> {
  let base = heapBases.get(build);
  if (!base) {
    base = kernelModule(false, build).then(async (module) =>
      (await instantiateKernels(module, createMemory(65536, false))).heapBase(),
    );
    heapBases.set(build, base);
  }
  return base;
}

const heapBases = new Map<KernelBuild, Promise<number>>();

function lowerBound(out: QuantTensor, relu: boolean): number {
  return relu ? out.zeroPoint : 0;
}
