import type { LayerHeader, NetworkHeader, QuantTensor } from '../model/types.ts';
import { layerInputs, outputTensor } from '../model/types.ts';
import { planArena, alignUp, type TensorLife } from './arena.ts';
import { usesPatches, roundUp, CIN_BLOCK } from '../format/layout.ts';
import { instantiateKernels, ensureMemory, type KernelExports } from './wasm.ts';

/**
 * A network placed in one wasm instance's memory:
 *
 *   [0, heapBase)          the module's own static data
 *   parameters             every layer's packed payload (docs/FORMAT.md), 16-byte aligned, in order
 *   derived parameters     Winograd weights U' computed from the payloads as they arrive
 *   arena                  all activations and per-layer scratch (patch rows, Winograd tiles),
 *                          buffers reused (arena.ts)
 *   products               512 bytes of Winograd products for one tile pair
 *   pad row                a row of zero-point bytes that conv taps in the padding read
 *
 * Memory is sized once, before any parameter arrives, so views handed out stay valid.
 */
export interface MemoryFootprint {
  /** Size of the wasm memory. */
  wasmBytes: number;
  /** Packed parameter bytes (weights, biases, multipliers). */
  parameterBytes: number;
  /** Peak activation bytes: the arena. */
  arenaBytes: number;
}

/**
 * How a conv runs: `direct` taps, `patches` (few input channels: im2col rows + a 1x1 kernel), or
 * `winograd` (3x3 stride 1 pad 1: integer F(2x2,3x3), bit-identical to direct).
 */
export type ConvPath = 'direct' | 'patches' | 'winograd';

export interface NetworkOptions {
  /** Use integer Winograd where it applies (default true); false forces direct convolution. */
  winograd?: boolean;
}

export class Network {
  readonly header: NetworkHeader;
  private readonly kernels: KernelExports;
  private readonly paramOffsets: number[];
  private readonly paramBytes: number[];
  private readonly tensorOffsets: number[];
  /** Arena offset of each layer's scratch buffer (patch rows, Winograd tiles), if it has one. */
  private readonly scratchOffsets: Map<number, number>;
  /** Offset of each Winograd layer's transformed weights. */
  private readonly derivedOffsets: Map<number, number>;
  private readonly paths: (ConvPath | null)[];
  private readonly padRow: number;
  private readonly products: number;
  readonly footprint: MemoryFootprint;

  private constructor(header: NetworkHeader, kernels: KernelExports, payloadBytes: number[], options: NetworkOptions) {
    this.header = header;
    this.kernels = kernels;
    this.paramBytes = payloadBytes;
    this.paths = header.layers.map((l) => (l.kind === 'conv' ? convPath(l, options) : null));
    let cursor = kernels.heapBase();
    const paramStart = cursor;
    this.paramOffsets = payloadBytes.map((bytes) => {
      const offset = cursor;
      cursor = alignUp(cursor + bytes, 16);
      return offset;
    });
    this.derivedOffsets = new Map();
    this.paths.forEach((path, i) => {
      if (path !== 'winograd') return;
      this.derivedOffsets.set(i, cursor);
      cursor = alignUp(cursor + winogradWeightBytes(header.layers[i] as ConvLayer), 16);
    });
    const parameterBytes = cursor - paramStart;
    const lives = tensorLives(header);
    const scratch = scratchLives(header, this.paths);
    const arena = planArena([...lives, ...scratch.values()], header.layers.length);
    this.tensorOffsets = arena.offsets.slice(0, lives.length).map((o) => cursor + o);
    this.scratchOffsets = new Map([...scratch.keys()].map((layer, i) => [layer, cursor + arena.offsets[lives.length + i]]));
    cursor += arena.bytes;
    this.padRow = cursor;
    cursor += alignUp(maxConvInputChannels(header.layers) + 16, 16);
    this.products = cursor;
    cursor += 512;
    ensureMemory(kernels.memory, cursor);
    this.footprint = { wasmBytes: kernels.memory.buffer.byteLength, parameterBytes, arenaBytes: arena.bytes };
  }

  /** Allocates memory for a network whose layer payloads have the given byte lengths. */
  static async create(header: NetworkHeader, payloadBytes: number[], options: NetworkOptions = {}): Promise<Network> {
    return new Network(header, await instantiateKernels(), payloadBytes, options);
  }

  /** Places layer `index`'s record payload and derives what its kernel needs from it. */
  setParameters(index: number, payload: Uint8Array): void {
    if (payload.length !== this.paramBytes[index]) {
      throw new RangeError(`layer ${index}: payload of ${payload.length} bytes, expected ${this.paramBytes[index]}`);
    }
    new Uint8Array(this.kernels.memory.buffer).set(payload, this.paramOffsets[index]);
    const derived = this.derivedOffsets.get(index);
    const layer = this.header.layers[index];
    if (derived !== undefined && layer.kind === 'conv') {
      this.kernels.winogradWeights(this.paramOffsets[index], layer.cin, layer.cout, this.header.tensors[layer.input].zeroPoint, derived);
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
    const at = this.tensorOffsets[out];
    return new Float32Array(this.kernels.memory.buffer.slice(at, at + 4 * this.header.tensors[out].c));
  }

  setInput(input: Uint8Array): void {
    const t0 = this.header.tensors[0];
    if (input.length !== t0.h * t0.w * t0.c) {
      throw new RangeError(`input has ${input.length} bytes, the network expects ${t0.h}x${t0.w}x${t0.c}`);
    }
    new Uint8Array(this.kernels.memory.buffer).set(input, this.tensorOffsets[0]);
  }

  /** A copy of a uint8 tensor as the last run left it (valid while no later layer reused its buffer). */
  readTensor(id: number): Uint8Array {
    const t = this.header.tensors[id];
    const at = this.tensorOffsets[id];
    return new Uint8Array(this.kernels.memory.buffer.slice(at, at + t.h * t.w * t.c));
  }

  /** Runs one layer; `profile` hooks call it to time layers one by one. */
  runLayer(layer: LayerHeader, index: number): void {
    const k = this.kernels;
    const tensors = this.header.tensors;
    const at = this.tensorOffsets;
    const out = tensors[layer.output];
    switch (layer.kind) {
      case 'conv':
        this.runConv(layer, index);
        break;
      case 'maxpool': {
        const x = tensors[layer.input];
        k.maxpool(at[layer.input], x.h, x.w, x.c, at[layer.output], out.h, out.w, layer.k, layer.stride, layer.pad);
        break;
      }
      case 'add': {
        const [a, b] = layer.inputs;
        k.add(
          at[a], tensors[a].zeroPoint, layer.multiplierA, at[b], tensors[b].zeroPoint, layer.multiplierB,
          at[layer.output], out.h * out.w * out.c, out.zeroPoint, lowerBound(out, layer.relu),
        );
        break;
      }
      case 'gap': {
        const x = tensors[layer.input];
        k.gap(at[layer.input], x.h * x.w, x.c, x.zeroPoint, at[layer.output], layer.multiplier, out.zeroPoint);
        break;
      }
      case 'fc':
        k.fc(at[layer.input], layer.cin, this.paramOffsets[index], layer.cout, at[layer.output]);
        break;
    }
  }

  private runConv(layer: ConvLayer, index: number): void {
    const k = this.kernels;
    const x = this.header.tensors[layer.input];
    const out = this.header.tensors[layer.output];
    const input = this.tensorOffsets[layer.input];
    const output = this.tensorOffsets[layer.output];
    const lo = lowerBound(out, layer.relu);
    const scratch = this.scratchOffsets.get(index) ?? 0;
    switch (this.paths[index]) {
      case 'winograd': {
        const [tilesH, tilesW] = winogradTiles(out);
        k.winogradInput(input, x.h, x.w, x.c, x.zeroPoint, scratch, tilesH, tilesW);
        k.winogradConv(scratch, tilesH, tilesW, x.c, this.derivedOffsets.get(index)!, layer.cout, output, out.h, out.w, out.zeroPoint, lo, this.products);
        break;
      }
      case 'patches': {
        const rowBytes = patchRowBytes(layer);
        k.patches(input, x.h, x.w, x.c, x.zeroPoint, layer.kh, layer.kw, layer.stride, layer.pad, scratch, out.h, out.w, rowBytes);
        k.conv(scratch, out.h, out.w, rowBytes, x.zeroPoint, this.paramOffsets[index], layer.cout, 1, 1, 1, 0, output, out.h, out.w, out.zeroPoint, lo, this.padRow);
        break;
      }
      default:
        k.conv(
          input, x.h, x.w, x.c, x.zeroPoint, this.paramOffsets[index], layer.cout, layer.kh, layer.kw, layer.stride, layer.pad,
          output, out.h, out.w, out.zeroPoint, lo, this.padRow,
        );
    }
  }
}

type ConvLayer = Extract<LayerHeader, { kind: 'conv' }>;

function convPath(layer: ConvLayer, options: NetworkOptions): ConvPath {
  if (usesPatches(layer)) return 'patches';
  const winogradShape = layer.kh === 3 && layer.kw === 3 && layer.stride === 1 && layer.pad === 1;
  return winogradShape && options.winograd !== false ? 'winograd' : 'direct';
}

/** 2x2 output tiles covering the output. */
function winogradTiles(out: { h: number; w: number }): [number, number] {
  return [Math.ceil(out.h / 2), Math.ceil(out.w / 2)];
}

/** Unfolded bias and multipliers, then int16 U' for 16 positions (assembly/winograd.ts). */
function winogradWeightBytes(layer: ConvLayer): number {
  const ocp = roundUp(layer.cout, 4);
  return 8 * ocp + ocp * 16 * roundUp(layer.cin, CIN_BLOCK) * 2;
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
