/**
 * The memory planner: where everything of a network lives in its one wasm memory, from the header
 * alone. The loader runs it on the header before anything is allocated, checks its size against
 * MAX_WASM_BYTES, and Network allocates exactly that plan (measure and allocate with one function,
 * as ggml's allocator does):
 *
 *   [0, base)              the module's own static data (heapBase)
 *   parameters             every layer's packed payload (docs/FORMAT.md), 16-byte aligned, in order
 *   derived parameters     Winograd layers' biases with the input zero point unfolded
 *   arena                  all activations and per-layer scratch (patch rows, Winograd tiles V, and
 *                          before layer 0 the input preprocessing's), buffers reused (arena.ts)
 *   pad row                a row of zero-point bytes that conv taps in the padding read
 *   thread scratch         per thread: a direct conv's block of weights widened to i16, a
 *                          GEMM's chunk of gathered pixels and group of widened filters, or
 *                          Winograd's products and sums of two tiles and one block of U'
 *
 * The scratch sizes follow the layouts that assembly/winograd.ts, winograd-weights.ts and conv.ts
 * (mac.ts) compute from the same arguments; memory-plan.test runs every conv shape of the test
 * models in exactly these sizes with guard bytes after them.
 */

import { CIN_BLOCK, roundUp } from '../format/layout.ts';
import { inputScratchBytes as inputScratchBytesFor } from '../image/preprocess.ts';
import type { LayerHeader, NetworkHeader } from '../model/types.ts';
import { layerInputs, outputTensor } from '../model/types.ts';
import { alignUp, planArena, type TensorLife } from './arena.ts';
import {
  type ConvLayer,
  type ConvPath,
  gemmPlan,
  patchRowBytes,
  positions,
  tapsDepth,
  tileCount,
  type WinogradTile,
} from './conv-path.ts';

/**
 * The most wasm memory a model may claim (docs/FORMAT.md): a header whose plan exceeds it is
 * refused before anything is allocated.
 */
export const MAX_WASM_BYTES = 2 ** 31;

const PAGE = 65536;

/** Byte offsets of everything in the memory. */
export interface MemoryLayout {
  paramOffsets: number[];
  derivedOffsets: Map<number, number>;
  tensorOffsets: number[];
  scratchOffsets: Map<number, number>;
  padRow: number;
  /** Thread 0's scratch; thread i's is `productStride` bytes further per i. */
  products: number;
  productStride: number;
  /** End of the last region. */
  totalBytes: number;
  /** The wasm memory: totalBytes in whole pages. */
  wasmBytes: number;
  parameterBytes: number;
  derivedBytes: number;
  arenaBytes: number;
  /** Where preprocessing may work while it writes tensor 0 (inside the arena, free until layer 0 runs). */
  inputScratch: number;
  inputScratchBytes: number;
}

/**
 * The whole memory map (see the top of this file) of a network whose layer payloads have the given
 * byte lengths, its convs running on `paths`, above `base`, for `threads` threads.
 */
export function planMemory(
  header: NetworkHeader,
  payloadBytes: readonly number[],
  paths: readonly (ConvPath | null)[],
  base: number,
  threads: number,
): MemoryLayout {
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
  const arena = planArena(
    [...lives, ...scratch.values(), { bytes: inputScratchBytes, firstLayer: -1, lastLayer: -1 }],
    header.layers.length,
  );
  const arenaStart = reserve(arena.bytes);
  const tensorOffsets = arena.offsets.slice(0, lives.length).map((o) => arenaStart + o);
  const scratchOffsets = new Map(
    [...scratch.keys()].map((layer, i) => [layer, arenaStart + arena.offsets[lives.length + i]]),
  );
  const inputScratch = arenaStart + arena.offsets[lives.length + scratch.size];
  const padRow = reserve(padRowChannels(header.layers, paths) + 16);
  const productStride = paths.reduce(
    (most, path, i) => (path === null ? most : Math.max(most, threadScratchBytes(header.layers[i] as ConvLayer, path))),
    0,
  );
  const products = reserve(productStride * threads);
  return {
    paramOffsets,
    derivedOffsets,
    tensorOffsets,
    scratchOffsets,
    padRow,
    products,
    productStride,
    totalBytes: cursor,
    wasmBytes: alignUp(cursor, PAGE),
    parameterBytes,
    derivedBytes,
    arenaBytes: arena.bytes,
    inputScratch,
    inputScratchBytes,
  };
}

/**
 * A thread's scratch for a conv: for F(4x4), the larger tile, Winograd's products and chunk sums of
 * two tiles (int32 x 4 channels per position and per output) and its block of U' (per position
 * Cp x 4 int16, padded by 64 bytes), as assembly/winograd.ts lays them out; or a direct block of
 * 4 filters widened to i16 (mac.ts prepareWeights); or a GEMM's chunk of pixels and group of
 * filters (gemmPlan), for a 1x1 conv, the patches path's rows or the taps path's gathered taps.
 */
export function threadScratchBytes(layer: Pick<ConvLayer, 'kh' | 'kw' | 'cin'>, path: ConvPath): number {
  if (path === 'winograd') {
    const tile = 4;
    const productsAndSums = 2 * 16 * (positions(tile) + tile * tile);
    return productsAndSums + positions(tile) * (roundUp(layer.cin, CIN_BLOCK) * 8 + 64);
  }
  if (path === 'gemm') return gemmPlan(layer.cin).scratchBytes;
  if (path === 'taps') return gemmPlan(tapsDepth(layer)).scratchBytes;
  if (path === 'patches') return gemmPlan(patchRowBytes(layer)).scratchBytes;
  return 2 * 4 * layer.kh * layer.kw * roundUp(layer.cin, CIN_BLOCK);
}

/**
 * The transformed input, int16 [positions][tiles][Cp] with each position padded by 64 bytes, for
 * whichever tile needs more (the tile is chosen only when the weights arrive).
 */
export function winogradTileBytes(layer: Pick<ConvLayer, 'cin'>, out: { h: number; w: number }): number {
  const bytes = (tile: WinogradTile) =>
    positions(tile) * (tileCount(out, tile) * roundUp(layer.cin, CIN_BLOCK) * 2 + 64);
  return Math.max(bytes(2), bytes(4));
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
function scratchLives(header: NetworkHeader, paths: readonly (ConvPath | null)[]): Map<number, TensorLife> {
  const scratch = new Map<number, TensorLife>();
  header.layers.forEach((layer, i) => {
    if (layer.kind !== 'conv' || paths[i] === 'direct' || paths[i] === 'gemm' || paths[i] === 'taps') return;
    const out = header.tensors[layer.output];
    const bytes = paths[i] === 'patches' ? out.h * out.w * patchRowBytes(layer) : winogradTileBytes(layer, out);
    scratch.set(i, { bytes, firstLayer: i, lastLayer: i });
  });
  return scratch;
}

/** Widest input row, in padded channels, that a direct or taps conv's tap may read from the pad row. */
function padRowChannels(layers: readonly LayerHeader[], paths: readonly (ConvPath | null)[]): number {
  const readsPadRow = (path: ConvPath | null) => path === 'direct' || path === 'taps';
  return layers.reduce(
    (most, l, i) => (l.kind === 'conv' && readsPadRow(paths[i]) ? Math.max(most, roundUp(l.cin, CIN_BLOCK)) : most),
    0,
  );
}
