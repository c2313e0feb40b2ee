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
 *   arena                  all activations and the stem's patch rows, buffers reused (arena.ts)
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

export class Network {
  readonly header: NetworkHeader;
  private readonly kernels: KernelExports;
  private readonly paramOffsets: number[];
  private readonly paramBytes: number[];
  private readonly tensorOffsets: number[];
  /** Arena offset of each layer's scratch buffer (patch rows), if it has one. */
  private readonly scratchOffsets: Map<number, number>;
  private readonly padRow: number;
  readonly footprint: MemoryFootprint;

  private constructor(header: NetworkHeader, kernels: KernelExports, payloadBytes: number[]) {
    this.header = header;
    this.kernels = kernels;
    this.paramBytes = payloadBytes;
    let cursor = kernels.heapBase();
    const paramStart = cursor;
    this.paramOffsets = payloadBytes.map((bytes) => {
      const offset = cursor;
      cursor = alignUp(cursor + bytes, 16);
      return offset;
    });
    const parameterBytes = cursor - paramStart;
    const lives = tensorLives(header);
    const scratch = scratchLives(header);
    const arena = planArena([...lives, ...scratch.values()], header.layers.length);
    this.tensorOffsets = arena.offsets.slice(0, lives.length).map((o) => cursor + o);
    this.scratchOffsets = new Map([...scratch.keys()].map((layer, i) => [layer, cursor + arena.offsets[lives.length + i]]));
    cursor += arena.bytes;
    this.padRow = cursor;
    cursor += alignUp(maxConvInputChannels(header.layers) + 16, 16);
    ensureMemory(kernels.memory, cursor);
    this.footprint = { wasmBytes: kernels.memory.buffer.byteLength, parameterBytes, arenaBytes: arena.bytes };
  }

  /** Allocates memory for a network whose layer payloads have the given byte lengths. */
  static async create(header: NetworkHeader, payloadBytes: number[]): Promise<Network> {
    return new Network(header, await instantiateKernels(), payloadBytes);
  }

  /** Where layer `index`'s payload belongs: the loader copies the record straight into it. */
  parameterView(index: number): Uint8Array {
    return new Uint8Array(this.kernels.memory.buffer, this.paramOffsets[index], this.paramBytes[index]);
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
      case 'conv': {
        const x = tensors[layer.input];
        const rows = this.scratchOffsets.get(index);
        if (rows === undefined) {
          k.conv(
            at[layer.input], x.h, x.w, x.c, x.zeroPoint,
            this.paramOffsets[index], layer.cout, layer.kh, layer.kw, layer.stride, layer.pad,
            at[layer.output], out.h, out.w, out.zeroPoint, lowerBound(out, layer.relu),
            this.padRow,
          );
        } else {
          const rowBytes = patchRowBytes(layer);
          k.patches(at[layer.input], x.h, x.w, x.c, x.zeroPoint, layer.kh, layer.kw, layer.stride, layer.pad, rows, out.h, out.w, rowBytes);
          k.conv(
            rows, out.h, out.w, rowBytes, x.zeroPoint,
            this.paramOffsets[index], layer.cout, 1, 1, 1, 0,
            at[layer.output], out.h, out.w, out.zeroPoint, lowerBound(out, layer.relu),
            this.padRow,
          );
        }
        break;
      }
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

/** Patch-row buffers of the convs that use them, keyed by layer index; alive during that layer only. */
function scratchLives(header: NetworkHeader): Map<number, TensorLife> {
  const scratch = new Map<number, TensorLife>();
  header.layers.forEach((layer, i) => {
    if (layer.kind !== 'conv' || !usesPatches(layer)) return;
    const out = header.tensors[layer.output];
    scratch.set(i, { bytes: out.h * out.w * patchRowBytes(layer), firstLayer: i, lastLayer: i });
  });
  return scratch;
}

function patchRowBytes(layer: { kh: number; kw: number; cin: number }): number {
  return roundUp(layer.kh * layer.kw * layer.cin, CIN_BLOCK);
}

/** Widest input row, in padded channels, that a conv tap may read from the pad row. */
function maxConvInputChannels(layers: LayerHeader[]): number {
  return Math.max(0, ...layers.map((l) => (l.kind === 'conv' ? Math.max(roundUp(l.cin, CIN_BLOCK), patchRowBytes(l)) : 0)));
}
