import type { LayerHeader, NetworkHeader, QuantTensor } from '../model/types.ts';
import { layerInputs, outputTensor } from '../model/types.ts';
import { planArena, alignUp, type TensorLife } from './arena.ts';
import { usesPatches, roundUp, CIN_BLOCK } from '../format/layout.ts';
import { chooseKernelBuild, createMemory, instantiateKernels, kernelModule, type KernelBuild, type KernelChoice, type KernelExports, type SlicedKernel } from './wasm.ts';
import { singleThread, threadPool, type Dispatch } from './threads.ts';
import { inputScratchBytes as inputScratchBytesFor } from '../image/preprocess.ts';

/**
 * A network placed in one wasm instance's memory:
 *
 *   [0, heapBase)          the module's own static data
 *   parameters             every layer's packed payload (docs/FORMAT.md), 16-byte aligned, in order
 *   derived parameters     Winograd layers' biases with the input zero point unfolded
 *   arena                  all activations and per-layer scratch (patch rows, Winograd tiles, and
 *                          before layer 0 the input preprocessing's), buffers reused (arena.ts)
 *   thread scratch         per thread: a direct conv's block of weights widened to i16, or
 *                          Winograd's products of two tiles and one block of U'
 *   pad row                a row of zero-point bytes that conv taps in the padding read
 *
 * Memory is sized once, before any parameter arrives, so views handed out stay valid.
 */
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

/**
 * How a conv runs: `direct` taps, `patches` (few input channels: im2col rows + a 1x1 kernel), or
 * `winograd` (3x3 stride 1 pad 1: integer F(2x2,3x3) or F(4x4,3x3), bit-identical to direct).
 */
export type ConvPath = 'direct' | 'patches' | 'winograd';

/** Outputs per side of a Winograd tile: F(2x2, 3x3) or F(4x4, 3x3). */
export type WinogradTile = 2 | 4;

/** How a Winograd layer runs: its tile, and how many input channels its exact sums take at a time. */
export interface WinogradPlan {
  tile: WinogradTile;
  chunk: number;
}

export interface NetworkOptions {
  /** Use integer Winograd where it applies (default true); false forces direct convolution. */
  winograd?: boolean;
  /** Threads sharing each layer (default 1). More than 1 needs SharedArrayBuffer. */
  threads?: number;
  /** Which kernel build runs (default `auto`: relaxed SIMD where it runs exactly, off x86; chooseKernelBuild). Same bits either way. */
  kernels?: KernelChoice;
}

/**
 * What a Network does to its memory, in order: how `resnet-wasm wasi-plan` records a network for a
 * host without JavaScript to replay (src/cli/wasi-plan.ts). Offsets are this memory's; kernel calls
 * are whole (without the trailing part, parts).
 */
export type NetworkOp =
  | { op: 'memory'; base: number; end: number }
  | { op: 'parameters'; layer: number; at: number; bytes: number }
  | { op: 'input'; at: number; bytes: number }
  | { op: 'fill'; at: number; value: number; bytes: number }
  | { op: 'call'; kernel: SlicedKernel | 'winogradBias'; args: number[] }
  | { op: 'logits'; at: number; count: number };

/** Byte offsets of everything in the memory; computed from the header alone. */
interface Layout {
  paramOffsets: number[];
  derivedOffsets: Map<number, number>;
  tensorOffsets: number[];
  scratchOffsets: Map<number, number>;
  padRow: number;
  products: number;
  productStride: number;
  totalBytes: number;
  parameterBytes: number;
  derivedBytes: number;
  arenaBytes: number;
  /** Where preprocessing may work while it writes tensor 0 (inside the arena, free until layer 0 runs). */
  inputScratch: number;
  inputScratchBytes: number;
}

/** What writes a network's input in place: tensor 0 (`bytes` at `at`) and a scratch area beside it. */
export interface InputTarget {
  memory: WebAssembly.Memory;
  kernels: KernelExports;
  at: number;
  bytes: number;
  scratch: number;
  scratchBytes: number;
}

export class Network {
  readonly header: NetworkHeader;
  readonly footprint: MemoryFootprint;
  /** The kernel build this network runs on. */
  readonly kernelBuild: KernelBuild;
  private readonly memory: WebAssembly.Memory;
  private readonly kernels: KernelExports;
  private readonly dispatch: Dispatch;
  private readonly layout: Layout;
  private readonly paths: (ConvPath | null)[];
  /** Each Winograd layer's plan, made when its weights arrive. */
  private readonly winograd = new Map<number, WinogradPlan>();
  private readonly paramBytes: number[];
  private readonly trace: ((op: NetworkOp) => void) | undefined;

  private constructor(header: NetworkHeader, payloadBytes: number[], paths: (ConvPath | null)[], layout: Layout, memory: WebAssembly.Memory, kernels: KernelExports, dispatch: Dispatch, kernelBuild: KernelBuild, trace?: (op: NetworkOp) => void) {
    this.header = header;
    this.paramBytes = payloadBytes;
    this.paths = paths;
    this.layout = layout;
    this.memory = memory;
    this.kernels = kernels;
    this.dispatch = dispatch;
    this.kernelBuild = kernelBuild;
    this.trace = trace;
    const { parameterBytes, derivedBytes, arenaBytes } = layout;
    this.footprint = { wasmBytes: memory.buffer.byteLength, parameterBytes, derivedBytes, arenaBytes };
  }

  /**
   * Allocates memory for a network whose layer payloads have the given byte lengths. `trace` is told
   * every operation on the memory from then on.
   */
  static async create(header: NetworkHeader, payloadBytes: number[], options: NetworkOptions = {}, trace?: (op: NetworkOp) => void): Promise<Network> {
    const threads = Math.max(1, Math.floor(options.threads ?? 1));
    const build = await chooseKernelBuild(options.kernels);
    const module = await kernelModule(threads > 1, build);
    const paths = header.layers.map((l) => (l.kind === 'conv' ? convPath(l, options) : null));
    const layout = layoutNetwork(header, payloadBytes, paths, await heapBase(build), threads);
    const memory = createMemory(layout.totalBytes, threads > 1);
    const kernels = await instantiateKernels(module, memory);
    const dispatch = threads > 1 ? await threadPool(kernels, module, memory, threads) : singleThread(kernels);
    trace?.({ op: 'memory', base: await heapBase(build), end: layout.totalBytes });
    return new Network(header, payloadBytes, paths, layout, memory, kernels, dispatch, build, trace);
  }

  /** Threads sharing each layer. */
  get threads(): number {
    return this.dispatch.parts;
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
      const args: Parameters<KernelExports['winogradBias']> = [at, layer.cin, layer.cout, zeroPoint, derived];
      this.trace?.({ op: 'call', kernel: 'winogradBias', args });
      this.kernels.winogradBias(...args);
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
    if (last < 0 || last === this.header.layers.length - 1) throw new RangeError(`tensor ${tensor} is not a uint8 tensor that a layer writes`);
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
    const target = { memory: this.memory, kernels: this.kernels, at: tensorOffsets[0], bytes: t0.h * t0.w * t0.c, scratch: inputScratch, scratchBytes: inputScratchBytes };
    write(target);
    this.trace?.({ op: 'input', at: target.at, bytes: target.bytes });
  }

  private forward(): Float32Array {
    this.header.layers.forEach((layer, i) => this.runLayer(layer, i));
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

  /** Runs one layer; `profile` hooks call it to time layers one by one. */
  runLayer(layer: LayerHeader, index: number): void {
    const tensors = this.header.tensors;
    const at = this.layout.tensorOffsets;
    const out = tensors[layer.output];
    switch (layer.kind) {
      case 'conv':
        return this.runConv(layer, index);
      case 'maxpool': {
        const x = tensors[layer.input];
        return this.run1('maxpool', [at[layer.input], x.h, x.w, x.c, at[layer.output], out.h, out.w, layer.k, layer.stride, layer.pad]);
      }
      case 'avgpool': {
        const x = tensors[layer.input];
        return this.run1('avgpool', [at[layer.input], x.h, x.w, x.c, at[layer.output], out.h, out.w, layer.k, layer.stride, layer.pad]);
      }
      case 'affine': {
        const x = tensors[layer.input];
        const params = this.layout.paramOffsets[index];
        return this.run1('affine', [at[layer.input], x.h * x.w, x.c, x.zeroPoint, params, at[layer.output], out.zeroPoint, lowerBound(out, layer.relu)]);
      }
      case 'add': {
        const [a, b] = layer.inputs;
        return this.run1('add', [
          at[a], tensors[a].zeroPoint, layer.multiplierA, at[b], tensors[b].zeroPoint, layer.multiplierB,
          at[layer.output], out.h * out.w * out.c, out.zeroPoint, lowerBound(out, layer.relu),
        ]);
      }
      case 'gap': {
        const x = tensors[layer.input];
        return this.run1('gap', [at[layer.input], x.h * x.w, x.c, x.zeroPoint, at[layer.output], layer.multiplier, out.zeroPoint]);
      }
      case 'fc':
        return this.run1('fc', [at[layer.input], layer.cin, this.layout.paramOffsets[index], layer.cout, at[layer.output]]);
    }
  }

  private runConv(layer: ConvLayer, index: number): void {
    const { tensorOffsets, paramOffsets, derivedOffsets, scratchOffsets, padRow, products, productStride } = this.layout;
    const x = this.header.tensors[layer.input];
    const out = this.header.tensors[layer.output];
    const input = tensorOffsets[layer.input];
    const output = tensorOffsets[layer.output];
    const requant = [output, out.h, out.w, out.zeroPoint, lowerBound(out, layer.relu)];
    const scratch = scratchOffsets.get(index) ?? 0;
    switch (this.paths[index]) {
      case 'winograd': {
        const { tile, chunk } = this.winograd.get(index)!;
        const [tilesH, tilesW] = winogradTiles(out, tile);
        this.run1('winogradInput', [input, x.h, x.w, x.c, x.zeroPoint, scratch, tile, tilesH, tilesW]);
        const bias = derivedOffsets.get(index)!;
        this.run1('winogradConv', [scratch, tile, chunk, tilesH, tilesW, x.c, bias, paramOffsets[index], layer.cout, ...requant, products, productStride]);
        return;
      }
      case 'patches': {
        const rowBytes = patchRowBytes(layer);
        this.run1('patches', [input, x.h, x.w, x.c, x.zeroPoint, layer.kh, layer.kw, layer.stride, layer.pad, scratch, out.h, out.w, rowBytes]);
        this.fillPadRow(x.zeroPoint, rowBytes);
        this.run1('conv', [scratch, out.h, out.w, rowBytes, x.zeroPoint, paramOffsets[index], layer.cout, 1, 1, 1, 0, ...requant, padRow, products, productStride]);
        return;
      }
      default:
        this.fillPadRow(x.zeroPoint, roundUp(x.c, CIN_BLOCK));
        this.run1('conv', [input, x.h, x.w, x.c, x.zeroPoint, paramOffsets[index], layer.cout, layer.kh, layer.kw, layer.stride, layer.pad, ...requant, padRow, products, productStride]);
    }
  }

  /** One kernel call, its work split over the threads. */
  private run1(kernel: SlicedKernel, args: number[]): void {
    this.trace?.({ op: 'call', kernel, args });
    this.dispatch.run(kernel, args);
  }

  /** Taps in the padding read this row: the input's zero point, as wide as a padded pixel. */
  private fillPadRow(zeroPoint: number, bytes: number): void {
    new Uint8Array(this.memory.buffer, this.layout.padRow, bytes).fill(zeroPoint);
    this.trace?.({ op: 'fill', at: this.layout.padRow, value: zeroPoint, bytes });
  }
}

type ConvLayer = Extract<LayerHeader, { kind: 'conv' }>;

function convPath(layer: ConvLayer, options: NetworkOptions): ConvPath {
  if (usesPatches(layer)) return 'patches';
  const winogradShape = layer.kh === 3 && layer.kw === 3 && layer.stride === 1 && layer.pad === 1;
  return winogradShape && options.winograd !== false ? 'winograd' : 'direct';
}

/**
 * Parameters, derived parameters, arena, pad row, products: the whole memory map (see the top of
 * this file), from the header alone.
 */
function layoutNetwork(header: NetworkHeader, payloadBytes: number[], paths: (ConvPath | null)[], base: number, threads: number): Layout {
  let cursor = base;
  const reserve = (bytes: number) => {
    const offset = cursor;
    cursor = alignUp(cursor + bytes, 16);
    return offset;
  };
  const paramOffsets = payloadBytes.map((bytes) => reserve(bytes));
  const parameterBytes = cursor - base;
  const derivedOffsets = new Map<number, number>();
  paths.forEach((path, i) => {
    if (path === 'winograd') derivedOffsets.set(i, reserve(8 * roundUp((header.layers[i] as ConvLayer).cout, 4)));
  });
  const derivedBytes = cursor - base - parameterBytes;
  const lives = tensorLives(header);
  const scratch = scratchLives(header, paths);
  // Preprocessing's scratch lives before layer 0 only: it costs the arena nothing once layer 0's output is larger.
  const inputScratchBytes = inputScratchBytesFor(header.preprocessing);
  const arena = planArena([...lives, ...scratch.values(), { bytes: inputScratchBytes, firstLayer: -1, lastLayer: -1 }], header.layers.length);
  const arenaStart = reserve(arena.bytes);
  const tensorOffsets = arena.offsets.slice(0, lives.length).map((o) => arenaStart + o);
  const scratchOffsets = new Map([...scratch.keys()].map((layer, i) => [layer, arenaStart + arena.offsets[lives.length + i]]));
  const inputScratch = arenaStart + arena.offsets[lives.length + scratch.size];
  const padRow = reserve(maxConvInputChannels(header.layers) + 16);
  const productStride = Math.max(0, ...paths.map((path, i) => (path === null ? 0 : threadScratchBytes(header.layers[i] as ConvLayer, path))));
  const products = reserve(productStride * threads);
  return {
    paramOffsets, derivedOffsets, tensorOffsets, scratchOffsets, padRow, products, productStride,
    totalBytes: cursor, parameterBytes, derivedBytes, arenaBytes: arena.bytes, inputScratch, inputScratchBytes,
  };
}

/** Where the kernels' own static data ends: the same for every instance of a build. */
async function heapBase(build: KernelBuild): Promise<number> {
  let base = heapBases.get(build);
  if (!base) {
    base = kernelModule(false, build).then(async (module) => (await instantiateKernels(module, createMemory(65536, false))).heapBase());
    heapBases.set(build, base);
  }
  return base;
}

const heapBases = new Map<KernelBuild, Promise<number>>();

/** Tiles of `tile` x `tile` outputs covering the output. */
function winogradTiles(out: { h: number; w: number }, tile: WinogradTile): [number, number] {
  return [Math.ceil(out.h / tile), Math.ceil(out.w / tile)];
}

/** How many tiles cover the output. */
function tileCount(out: { h: number; w: number }, tile: WinogradTile): number {
  const [tilesH, tilesW] = winogradTiles(out, tile);
  return tilesH * tilesW;
}

/** Transform positions of a tile: (tile + 2)². */
function positions(tile: WinogradTile): number {
  return (tile + 2) ** 2;
}

/**
 * F(4x4) where it multiplies less and stays exact in at most MAX_F4_CHUNKS chunks of input
 * channels, else F(2x2) in as many chunks as it needs (one for any ResNet). The output transform
 * yields 576·Y (F(4x4)) or 4·Y (F(2x2)) modulo 2^32, exact while |Y| < 2^25 or 2^29
 * (assembly/winograd-f4.ts); a chunk's |Y| is at most its largest filter Σ|w| (`norm`) times the
 * input's largest |d − zx|.
 */
function planWinograd(cin: number, norm: (c0: number, c1: number) => number, zeroPoint: number, out: { h: number; w: number }): WinogradPlan {
  const cp = roundUp(cin, CIN_BLOCK);
  const largestInput = Math.max(zeroPoint, 255 - zeroPoint);
  const exactIn = (chunk: number, limit: number) => {
    for (let c0 = 0; c0 < cp; c0 += chunk) if (norm(c0, Math.min(c0 + chunk, cp)) * largestInput >= limit) return false;
    return true;
  };
  const chunkFor = (limit: number, chunks: number) => {
    for (let k = 1; k <= chunks; k++) {
      const chunk = roundUp(Math.ceil(cp / k), CIN_BLOCK);
      if (exactIn(chunk, limit)) return chunk;
    }
    return undefined;
  };
  const f4 = f4HasFewerProducts(out) ? chunkFor(2 ** 25, MAX_F4_CHUNKS) : undefined;
  return f4 ? { tile: 4, chunk: f4 } : { tile: 2, chunk: chunkFor(2 ** 29, cp / CIN_BLOCK) ?? CIN_BLOCK };
}

/** Beyond this many chunks F(4x4)'s extra output transforms outweigh its savings. */
const MAX_F4_CHUNKS = 4;

/** Whether F(4x4) multiplies less than F(2x2) for this output (not on maps of 2 or 5 pixels, say). */
function f4HasFewerProducts(out: { h: number; w: number }): boolean {
  const products = (tile: WinogradTile) => positions(tile) * tileCount(out, tile);
  return products(4) < products(2);
}

/**
 * A thread's scratch for a conv: for F(4x4), the larger tile, Winograd's products and chunk sums of
 * two tiles (int32 x 4 channels per position and per output) and its block of U' (per position
 * Cp x 4 int16, padded by 64 bytes), as assembly/winograd.ts lays them out; or a direct block of
 * weights widened to i16.
 */
export function threadScratchBytes(layer: Pick<ConvLayer, 'kh' | 'kw' | 'cin'>, path: ConvPath): number {
  if (path === 'winograd') {
    const tile = 4;
    const productsAndSums = 2 * 16 * (positions(tile) + tile * tile);
    return productsAndSums + positions(tile) * (roundUp(layer.cin, CIN_BLOCK) * 8 + 64);
  }
  const rowBytes = path === 'patches' ? patchRowBytes(layer) : layer.kh * layer.kw * roundUp(layer.cin, CIN_BLOCK);
  return 2 * 4 * rowBytes;
}

function lowerBound(out: QuantTensor, relu: boolean): number {
  return relu ? out.zeroPoint : 0;
}

/** Bytes and lifetime of every tensor; the fc output holds f32 logits padded to 4 channels. */
function tensorLives(header: NetworkHeader): TensorLife[] {
  const lives: TensorLife[] = header.tensors.map((t) => ({ bytes: t.h * t.w * t.c, firstLayer: -1, lastLayer: -1 }));
  header.layers.forEach((layer, i) => {
    lives[layer.output].firstLayer = i;
    if (layer.kind === 'fc') lives[layer.output].bytes = 4 * alignUp(layer.cout, 4);
    for (const input of layerInputs(layer)) lives[input].lastLayer = i;
  });
  lives[outputTensor(header)].lastLayer = Infinity;
  return lives;
}

/** Scratch of the convs that need it, keyed by layer index; alive during that layer only. */
function scratchLives(header: NetworkHeader, paths: (ConvPath | null)[]): Map<number, TensorLife> {
  const scratch = new Map<number, TensorLife>();
  header.layers.forEach((layer, i) => {
    if (layer.kind !== 'conv' || paths[i] === 'direct') return;
    const out = header.tensors[layer.output];
    const bytes = paths[i] === 'patches' ? out.h * out.w * patchRowBytes(layer) : winogradTileBytes(layer, out);
    scratch.set(i, { bytes, firstLayer: i, lastLayer: i });
  });
  return scratch;
}

/**
 * The transformed input, int16 [positions][tiles][Cp] with each position padded by 64 bytes, for
 * whichever tile needs more (the tile is chosen only when the weights arrive).
 */
export function winogradTileBytes(layer: Pick<ConvLayer, 'cin'>, out: { h: number; w: number }): number {
  const bytes = (tile: WinogradTile) => positions(tile) * (tileCount(out, tile) * roundUp(layer.cin, CIN_BLOCK) * 2 + 64);
  return Math.max(bytes(2), bytes(4));
}

function patchRowBytes(layer: { kh: number; kw: number; cin: number }): number {
  return roundUp(layer.kh * layer.kw * layer.cin, CIN_BLOCK);
}

/** Widest input row, in padded channels, that a conv tap may read from the pad row. */
function maxConvInputChannels(layers: LayerHeader[]): number {
  return Math.max(0, ...layers.map((l) => (l.kind === 'conv' ? Math.max(roundUp(l.cin, CIN_BLOCK), patchRowBytes(l)) : 0)));
}
