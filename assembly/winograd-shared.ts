import { requantize4, narrow4 } from './requantize';
import { storeChannels } from './conv';

// What F(2x2) (winograd-f2.ts) and F(4x4) (winograd-f4.ts) share: reading an input tile's shifted
// values, and storing a tile's exact outputs (winograd.ts describes the method and the layouts).

/** Loads 8 channels of input pixel (y, x) minus zx as i16, or zeros outside the input. */
// @ts-ignore: decorator
@inline export function shifted8(input: usize, inH: i32, inW: i32, inC: i32, y: i32, x: i32, c: i32, zero: v128): v128 {
  if (<u32>y >= <u32>inH || <u32>x >= <u32>inW) return i16x8.splat(0);
  return i16x8.sub(v128.load8x8_u(input + <usize>((y * inW + x) * inC + c)), zero);
}

/**
 * One output's exact accumulators (4 channels) from one chunk: added to the chunks before it (its
 * slot in S), kept there until the last chunk, which stores the output.
 */
// @ts-ignore: decorator
@inline export function chunkOutput(
  y4: v128, slot: usize, first: bool, last: bool, oy: i32, ox: i32, biasV: v128, multV: v128,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  const y = first ? y4 : i32x4.add(y4, v128.load(slot));
  if (last) storeOutput(y, oy, ox, biasV, multV, block, outH, outW, outC, channels, zo, lo);
  else v128.store(slot, y);
}

/**
 * Output (oy, ox) of a block of 4 channels (starting at `block`) from its exact int32 accumulators,
 * + bias, requantized, if it lies inside the output.
 */
// @ts-ignore: decorator
@inline export function storeOutput(
  y4: v128, oy: i32, ox: i32, biasV: v128, multV: v128,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  if (oy >= outH || ox >= outW) return;
  const q = narrow4(requantize4(i32x4.add(y4, biasV), multV, zo, lo));
  storeChannels(block + <usize>((oy * outW + ox) * outC), q, channels);
}
