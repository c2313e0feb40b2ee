import { requantize4, narrow16 } from './requantize';
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
 * One row of a tile's exact accumulators from one chunk: `count` (2 or 4) outputs from (oy, ox),
 * 4 channels each. Added to the chunks before it (its `count` slots in S), kept there until the
 * last chunk, which stores the outputs (storeRow). F(2x2) passes its 2 outputs twice.
 */
// @ts-ignore: decorator
@inline export function chunkRow(
  y0: v128, y1: v128, y2: v128, y3: v128, count: i32, slot: usize, first: bool, last: bool, oy: i32, ox: i32, biasV: v128, multV: v128,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  if (!first) {
    y0 = i32x4.add(y0, v128.load(slot));
    y1 = i32x4.add(y1, v128.load(slot, 16));
    if (count == 4) {
      y2 = i32x4.add(y2, v128.load(slot, 32));
      y3 = i32x4.add(y3, v128.load(slot, 48));
    }
  }
  if (last) {
    storeRow(y0, y1, y2, y3, count, oy, ox, biasV, multV, block, outH, outW, outC, channels, zo, lo);
  } else {
    v128.store(slot, y0);
    v128.store(slot, y1, 16);
    if (count == 4) {
      v128.store(slot, y2, 32);
      v128.store(slot, y3, 48);
    }
  }
}

/**
 * Outputs (oy, ox..ox + count − 1) of a block of 4 channels (starting at `block`) from their exact
 * int32 accumulators, + bias, requantized together into one vector of bytes, those that lie
 * inside the output stored: a whole row of whole blocks as 4 lanes.
 */
// @ts-ignore: decorator
@inline function storeRow(
  y0: v128, y1: v128, y2: v128, y3: v128, count: i32, oy: i32, ox: i32, biasV: v128, multV: v128,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  if (oy >= outH) return;
  const q = narrow16(
    requantize4(i32x4.add(y0, biasV), multV, zo, lo), requantize4(i32x4.add(y1, biasV), multV, zo, lo),
    requantize4(i32x4.add(y2, biasV), multV, zo, lo), requantize4(i32x4.add(y3, biasV), multV, zo, lo),
  );
  const at = block + <usize>((oy * outW + ox) * outC);
  const step = <usize>outC;
  const n = min(count, outW - ox);
  if (n == 4 && channels == 4) {
    v128.store32_lane(at, q, 0);
    v128.store32_lane(at + step, q, 1);
    v128.store32_lane(at + 2 * step, q, 2);
    v128.store32_lane(at + 3 * step, q, 3);
    return;
  }
  storeChannels(at, q, channels);
  if (n > 1) storeChannels(at + step, i32x4.shuffle(q, q, 1, 1, 1, 1), channels);
  if (n > 2) storeChannels(at + 2 * step, i32x4.shuffle(q, q, 2, 2, 2, 2), channels);
  if (n > 3) storeChannels(at + 3 * step, i32x4.shuffle(q, q, 3, 3, 3, 3), channels);
}
