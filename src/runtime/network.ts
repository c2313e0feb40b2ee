import type { LayerHeader, NetworkHeader, QuantTensor } from '../model/types.ts';
import { layerInputs, outputTensor } from '../model/types.ts';
import { planArena, alignUp, type TensorLife } from './arena.ts';
import { usesPatches, roundUp, CIN_BLOCK } from '../format/layout.ts';
import { chooseKernelBuild, createMemory, WASM_PAGE, instantiateKernels, kernelModule, type KernelBuild, type KernelChoice, type KernelExports, type SlicedKernel } from './wasm.ts';
import { singleThread, threadPool, type Dispatch } from './threads.ts';

/**
 * A network placed in one wasm instance's memory:
 *
 *   [0, heapBase)          the module's own static data
 *   parameters             every layer's packed payload (docs/FORMAT.md), 16-byte aligned, in order,
 *                          except the payloads of Winograd layers with precomputed U', which pass
 *                          through one staging area
 *   derived parameters     Winograd layers' unfolded biases, and U' where it is precomputed
 *   arena                  all activations and per-layer scratch (patch rows, Winograd tiles),
 *                          buffers reused (arena.ts)
 *   products               per thread: 512 bytes of Winograd products, then one block of U' for
 *                          the layers that derive it as they run
 *   pad row                a row of zero-point bytes that conv taps in the padding read
 *
 * Memory is sized once, before any parameter arrives, so views handed out stay valid.
 */
export interface MemoryFootprint {
  /** Size of the wasm memory. */
  wasmBytes: number;
  /** Packed parameter bytes kept as they came (weights, biases, multipliers), staging included. */
  parameterBytes: number;
  /** Parameters derived at load: Winograd's unfolded biases and precomputed int16 weights. */
  derivedBytes: number;
  /** Peak activation bytes: the arena. */
  arenaBytes: number;
}

/**
 * How a conv runs: `direct` taps, `patches` (few input channels: im2col rows + a 1x1 kernel), or
 * `winograd` (3x3 stride 1 pad 1: integer F(2x2,3x3), bit-identical to direct).
 */
export type ConvPath = 'direct' | 'patches' | 'winograd';

/**
 * Where Winograd layers get U' (32 bytes per 3x3 filter, against the payload's 9): derived block
 * by block as each layer runs (`on-the-fly`: no memory beyond the payload), or derived at load
 * (`precomputed`) for the layers where that pays: those with few tiles to spread the derivation
 * over (PRECOMPUTE_BELOW_TILES). `auto` (the default) precomputes those, fewest tiles first, while
 * the memory stays within budget (LOADER_RESERVE); for ResNet-18 and -50 that is none of them.
 */
export type WinogradWeights = 'auto' | 'precomputed' | 'on-the-fly';

/**
 * Measured on ResNet-18, 1 thread: a 7x7 map (16 tiles) of 512→512 takes 1.65 ms with U'
 * precomputed and 2.37 ms on the fly; from 14x14 (49 tiles) up, on the fly is as fast or faster
 * (its block of U' stays in cache).
 */
const PRECOMPUTE_BELOW_TILES = 32;

/**
 * In `auto`, the wasm memory but the arena stays within 1.5 x the payload bytes less this reserve
 * for the loader's own JavaScript buffers (measured: 2.5 MiB at the peak), so that a model loads
 * within 1.5 x its file + its arena, as docs/FORMAT.md promises.
 */
const LOADER_RESERVE = 4 * 2 ** 20;

export interface NetworkOptions {
  /** Use integer Winograd where it applies (default true); false forces direct convolution. */
  winograd?: boolean;
  /** Default `auto`. */
  winogradWeights?: WinogradWeights;
  /** Threads sharing each layer (default 1). More than 1 needs SharedArrayBuffer. */
  threads?: number;
  /** Which kernel build runs (default `auto`: relaxed SIMD where it runs exactly; same bits either way). */
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
  | { op: 'call'; kernel: SlicedKernel | 'winogradWeights'; args: number[] }
  | { op: 'logits'; at: number; count: number };

/** Byte offsets of everything in the memory; computed from the header alone. */
interface Layout {
  paramOffsets: number[];
  derivedOffsets: Map<number, number>;
  /** Winograd layers whose U' is computed at load. */
  precomputed: Set<number>;
  tensorOffsets: number[];
  scratchOffsets: Map<number, number>;
  padRow: number;
  products: number;
  productStride: number;
  totalBytes: number;
  parameterBytes: number;
  derivedBytes: number;
  arenaBytes: number;
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
    const layout = chooseLayout(header, payloadBytes, paths, await heapBase(build), threads, options.winogradWeights ?? 'auto');
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
      const precompute = this.layout.precomputed.has(index) ? 1 : 0;
      const args: Parameters<KernelExports['winogradWeights']> = [at, layer.cin, layer.cout, this.header.tensors[layer.input].zeroPoint, derived, precompute];
      this.trace?.({ op: 'call', kernel: 'winogradWeights', args });
      this.kernels.winogradWeights(...args);
    }
  }

  /** How each conv runs (null for other layers). */
  convPaths(): readonly (ConvPath | null)[] {
    return this.paths;
  }

  /** Runs the network on a quantized NHWC input (tensor 0) and returns the logits. */
  run(input: Uint8Array): Float32Array {
    this.setInput(input);
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
    const { tensorOffsets, paramOffsets, derivedOffsets, precomputed, scratchOffsets, padRow, products, productStride } = this.layout;
    const x = this.header.tensors[layer.input];
    const out = this.header.tensors[layer.output];
    const input = tensorOffsets[layer.input];
    const output = tensorOffsets[layer.output];
    const requant = [output, out.h, out.w, out.zeroPoint, lowerBound(out, layer.relu)];
    const scratch = scratchOffsets.get(index) ?? 0;
    switch (this.paths[index]) {
      case 'winograd': {
        const [tilesH, tilesW] = winogradTiles(out);
        this.run1('winogradInput', [input, x.h, x.w, x.c, x.zeroPoint, scratch, tilesH, tilesW]);
        const derived = derivedOffsets.get(index)!;
        const weights = precomputed.has(index) ? [derived + 8 * roundUp(layer.cout, 4), 0] : [paramOffsets[index], 1];
        this.run1('winogradConv', [scratch, tilesH, tilesW, x.c, derived, ...weights, layer.cout, ...requant, products, productStride]);
        return;
      }
      case 'patches': {
        const rowBytes = patchRowBytes(layer);
        this.run1('patches', [input, x.h, x.w, x.c, x.zeroPoint, layer.kh, layer.kw, layer.stride, layer.pad, scratch, out.h, out.w, rowBytes]);
        this.fillPadRow(x.zeroPoint, rowBytes);
        this.run1('conv', [scratch, out.h, out.w, rowBytes, x.zeroPoint, paramOffsets[index], layer.cout, 1, 1, 1, 0, ...requant, padRow]);
        return;
      }
      default:
        this.fillPadRow(x.zeroPoint, roundUp(x.c, CIN_BLOCK));
        this.run1('conv', [input, x.h, x.w, x.c, x.zeroPoint, paramOffsets[index], layer.cout, layer.kh, layer.kw, layer.stride, layer.pad, ...requant, padRow]);
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

/** The memory map for the WinogradWeights choice. */
function chooseLayout(header: NetworkHeader, payloadBytes: number[], paths: (ConvPath | null)[], base: number, threads: number, mode: WinogradWeights): Layout {
  const layout = (precomputed: Iterable<number>) => layoutNetwork(header, payloadBytes, paths, new Set(precomputed), base, threads);
  const tiles = (i: number) => winogradTiles(header.tensors[header.layers[i].output]).reduce((a, b) => a * b);
  const worth = paths.flatMap((path, i) => (path === 'winograd' && tiles(i) < PRECOMPUTE_BELOW_TILES ? [i] : []));
  if (mode !== 'auto') return layout(mode === 'precomputed' ? worth : []);
  const budget = 1.5 * payloadBytes.reduce((sum, bytes) => sum + bytes, 0) - LOADER_RESERVE;
  const chosen: number[] = [];
  for (const candidate of worth.sort((a, b) => tiles(a) - tiles(b))) {
    const trial = layout([...chosen, candidate]);
    if (alignUp(trial.totalBytes, WASM_PAGE) - trial.arenaBytes <= budget) chosen.push(candidate);
  }
  return layout(chosen);
}

/**
 * Parameters, derived parameters, arena, pad row, products: the whole memory map (see the top of
 * this file), from the header alone.
 */
function layoutNetwork(header: NetworkHeader, payloadBytes: number[], paths: (ConvPath | null)[], precomputed: Set<number>, base: number, threads: number): Layout {
  let cursor = base;
  const reserve = (bytes: number) => {
    const offset = cursor;
    cursor = alignUp(cursor + bytes, 16);
    return offset;
  };
  // A payload is needed only until its U' is precomputed: those payloads share one staging area.
  const kept = payloadBytes.map((bytes, i) => (precomputed.has(i) ? -1 : reserve(bytes)));
  const staging = reserve(Math.max(0, ...payloadBytes.filter((_, i) => precomputed.has(i))));
  const paramOffsets = kept.map((offset) => (offset < 0 ? staging : offset));
  const parameterBytes = cursor - base;
  const derivedOffsets = new Map<number, number>();
  paths.forEach((path, i) => {
    if (path === 'winograd') derivedOffsets.set(i, reserve(winogradWeightBytes(header.layers[i] as ConvLayer, precomputed.has(i))));
  });
  const derivedBytes = cursor - base - parameterBytes;
  const lives = tensorLives(header);
  const scratch = scratchLives(header, paths);
  const arena = planArena([...lives, ...scratch.values()], header.layers.length);
  const arenaStart = reserve(arena.bytes);
  const tensorOffsets = arena.offsets.slice(0, lives.length).map((o) => arenaStart + o);
  const scratchOffsets = new Map([...scratch.keys()].map((layer, i) => [layer, arenaStart + arena.offsets[lives.length + i]]));
  const padRow = reserve(maxConvInputChannels(header.layers) + 16);
  const derivedAsRun = paths.map((path, i) => (path === 'winograd' && !precomputed.has(i) ? winogradBlockBytes(header.layers[i] as ConvLayer) : 0));
  const productStride = 512 + Math.max(0, ...derivedAsRun);
  const products = reserve(productStride * threads);
  return {
    paramOffsets, derivedOffsets, precomputed, tensorOffsets, scratchOffsets, padRow, products, productStride,
    totalBytes: cursor, parameterBytes, derivedBytes, arenaBytes: arena.bytes,
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

/** 2x2 output tiles covering the output. */
function winogradTiles(out: { h: number; w: number }): [number, number] {
  return [Math.ceil(out.h / 2), Math.ceil(out.w / 2)];
}

/** Unfolded bias and multipliers, then, if precomputed, U' (assembly/winograd-weights.ts). */
function winogradWeightBytes(layer: ConvLayer, precomputed: boolean): number {
  const blocks = roundUp(layer.cout, 4) / 4;
  return 32 * blocks + (precomputed ? blocks * winogradBlockBytes(layer) : 0);
}

/** int16 U' of one block of 4 output channels: 16 positions x Cp x 4. */
function winogradBlockBytes(layer: ConvLayer): number {
  return 16 * roundUp(layer.cin, CIN_BLOCK) * 8;
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

/** The transformed input: int16 [16][tiles][Cp]. */
function winogradTileBytes(layer: ConvLayer, out: { h: number; w: number }): number {
  const [tilesH, tilesW] = winogradTiles(out);
  return 16 * tilesH * tilesW * roundUp(layer.cin, CIN_BLOCK) * 2;
}

function patchRowBytes(layer: { kh: number; kw: number; cin: number }): number {
  return roundUp(layer.kh * layer.kw * layer.cin, CIN_BLOCK);
}

/** Widest input row, in padded channels, that a conv tap may read from the pad row. */
function maxConvInputChannels(layers: LayerHeader[]): number {
  return Math.max(0, ...layers.map((l) => (l.kind === 'conv' ? Math.max(roundUp(l.cin, CIN_BLOCK), patchRowBytes(l)) : 0)));
}
