/**
 * How a conv runs, and the geometry that both its kernel calls (network.ts) and its memory
 * (memory-plan.ts) follow: `direct` taps, `patches` (few input channels: im2col rows + the GEMM),
 * `gemm` (1x1 unpadded, any stride: a blocked GEMM, assembly/gemm.ts), `taps` (any other kernel, the
 * 3x3 stride-2 convs: the same GEMM over each pixel's gathered taps) or `winograd` (3x3 stride 1
 * pad 1: integer F(2x2,3x3) or F(4x4,3x3)); all bit-identical to direct.
 */

import { CIN_BLOCK, roundUp, usesPatches } from '../format/layout.ts';
import type { LayerHeader } from '../model/types.ts';

export type ConvPath = 'direct' | 'patches' | 'gemm' | 'taps' | 'winograd';

export type ConvLayer = Extract<LayerHeader, { kind: 'conv' }>;

/** Outputs per side of a Winograd tile: F(2x2, 3x3) or F(4x4, 3x3). */
export type WinogradTile = 2 | 4;

/** How a Winograd layer runs: its tile, and how many input channels its exact sums take at a time. */
export interface WinogradPlan {
  tile: WinogradTile;
  chunk: number;
}

/** Which paths may run besides direct (NetworkOptions). */
export interface PathChoice {
  winograd: boolean;
  gemm: boolean;
}

export function convPath(layer: ConvLayer, { winograd, gemm }: PathChoice): ConvPath {
  if (usesPatches(layer)) return 'patches';
  if (layer.kh === 1 && layer.kw === 1 && layer.pad === 0 && gemm) return 'gemm';
  const winogradShape = layer.kh === 3 && layer.kw === 3 && layer.stride === 1 && layer.pad === 1;
  if (winogradShape && winograd) return 'winograd';
  return gemm && tapsDepth(layer) <= MAX_TAPS_DEPTH ? 'taps' : 'direct';
}

/**
 * The deepest GEMM the taps path takes: a tile's operands, a quad of pixels (8 bytes per K) and a
 * pair of filter blocks (16), then fit in L1 (24·2304 = 54 KiB). Deeper, they stream from L2 on
 * every tile: ResNet-50's 512-channel stride-2 conv (K = 4608) ran at 31 GMAC/s as taps against 36
 * direct, whose block of 4 widened filters (36 KiB) stays in L1 for every pixel.
 */
export const MAX_TAPS_DEPTH = 9 * 256;

/** The depth of the taps path's GEMM: every tap's padded input channels. */
export function tapsDepth(layer: Pick<ConvLayer, 'kh' | 'kw' | 'cin'>): number {
  return layer.kh * layer.kw * roundUp(layer.cin, CIN_BLOCK);
}

/** Bytes of a patch row: one receptive field, kh·kw·cin, padded to a whole input block. */
export function patchRowBytes(layer: Pick<ConvLayer, 'kh' | 'kw' | 'cin'>): number {
  return roundUp(layer.kh * layer.kw * layer.cin, CIN_BLOCK);
}

/**
 * The patches path's second kernel call, without its weights and output: the GEMM over the patch
 * rows at `rows` read as an out.h x out.w image of `kp` channels.
 */
export function patchRowsGemm(rows: number, out: { h: number; w: number }, kp: number, cout: number) {
  return { input: rows, inW: out.w, inC: kp, stride: 1, outH: out.h, outW: out.w, ...gemmBlocking(kp, out, cout) };
}

/** The blocking arguments of a gemm or gemmTaps call of depth `k` (the input channels of a 1x1 conv) to `cout` channels on an `out` map. */
export function gemmBlocking(k: number, out: { h: number; w: number }, cout: number) {
  const { groupBlocks, chunkPixels } = gemmPlan(k);
  return { groupBlocks, chunkPixels, byPixels: gemmSlicesPixels(out.h * out.w, cout) ? 1 : 0 };
}

/**
 * Whether gemm's chunks of work are ranges of pixels rather than of output channels. Each chunk
 * prepares its filters and gathers its pixels: sliced by channels it gathers every pixel, sliced by
 * pixels it prepares every filter, so the larger of the two is the one to cut. (At 2 threads on
 * ResNet-50's 64-channel layers, gathering every pixel again per chunk of 8 filters took ~15% of
 * the layer; at 7x7 pixels, preparing all 2048 filters per chunk would take ~20%.)
 */
export function gemmSlicesPixels(pixels: number, cout: number): boolean {
  return pixels >= cout;
}

/**
 * How assembly/gemm.ts blocks a GEMM of depth `k` (a 1x1 conv's input channels, or tapsDepth):
 * `groupBlocks` blocks of 4 filters widened at a time (at most GEMM_WEIGHT_BYTES, kept in L2) and
 * `chunkPixels` input pixels gathered at a time (an even count, at most GEMM_CHUNK_BYTES, kept in
 * L1), and the scratch of one thread: the chunk, then the widened group.
 */
export function gemmPlan(k: number): { groupBlocks: number; chunkPixels: number; scratchBytes: number } {
  const cp = roundUp(k, CIN_BLOCK);
  const preparedBlock = cp * 8;
  const preparedPixel = cp * 2;
  const groupBlocks = Math.max(2, 2 * Math.floor(GEMM_WEIGHT_BYTES / (2 * preparedBlock)));
  const chunkPixels = Math.max(4, 4 * Math.floor(GEMM_CHUNK_BYTES / (4 * preparedPixel)));
  return { groupBlocks, chunkPixels, scratchBytes: chunkPixels * preparedPixel + groupBlocks * preparedBlock };
}

/**
 * A group of filters widened to int16 (4 filters of Cp x 2 bytes per block). Every group gathers
 * the pixels again: on the 7x7 maps, where a chunk is only 4-8 pixels and a group 32-128 filters,
 * 256 KiB instead of 128 ran layer4's 1x1 convs 2-3% faster (gemm export, fastest of 61 rounds).
 */
const GEMM_WEIGHT_BYTES = 256 * 1024;
/** A chunk of pixels' activations as the micro-kernel loads them (Cp x 2 bytes per pixel). */
const GEMM_CHUNK_BYTES = 8 * 1024;

/** Tiles of `tile` x `tile` outputs covering the output. */
export function winogradTiles(out: { h: number; w: number }, tile: WinogradTile): [number, number] {
  return [Math.ceil(out.h / tile), Math.ceil(out.w / tile)];
}

/** How many tiles cover the output. */
export function tileCount(out: { h: number; w: number }, tile: WinogradTile): number {
  const [tilesH, tilesW] = winogradTiles(out, tile);
  return tilesH * tilesW;
}

/** Transform positions of a tile: (tile + 2)². */
export function positions(tile: WinogradTile): number {
  return (tile + 2) ** 2;
}

/**
 * F(4x4) where it multiplies less and stays exact in at most MAX_F4_CHUNKS chunks of input
 * channels, else F(2x2) in as many chunks as it needs (one for any ResNet). The output transform
 * yields 576·Y (F(4x4)) or 4·Y (F(2x2)) modulo 2^32, exact while |Y| < 2^25 or 2^29
 * (assembly/winograd-f4.ts); a chunk's |Y| is at most its largest filter Σ|w| (`norm`) times the
 * input's largest |d − zx|.
 */
export function planWinograd(
  cin: number,
  norm: (c0: number, c1: number) => number,
  zeroPoint: number,
  out: { h: number; w: number },
): WinogradPlan {
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
