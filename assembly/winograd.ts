import { requantize4, narrow4, sum4 } from './requantize';
import { roundUp, storeChannels } from './conv';
import { sliceStart, sliceEnd } from './parts';
import { positionBytes, transformBlock } from './winograd-weights';

// Integer Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 convolutions, bit-exact with the direct
// kernel. With G scaled by 2 every transform is an integer matrix:
//   weights U' = (2G) g (2G)ᵀ = 4U     |U'| ≤ 9·127 = 1143: int16
//   inputs  V  = Bᵀ (d − zx) B         |V|  ≤ 4·255 = 1020: int16
//   Y = Aᵀ [Σ_c U'·V] A = 4 · (the exact integer convolution), so Y >> 2 is exact,
// and requantization then sees the same int32 accumulator as the direct path. The products
// run through i32x4.dot_i16x8_s: 16 multiplies per 2x2 outputs instead of 36.
//
// Layouts (Cp = channels rounded up to 8, T = tiles, ξ = 4·row + col of the 4x4 transform):
//   V  int16 [ξ][T][Cp]                       the transformed input tiles
//   U  int16 [ξ][Cp/8][4 channels][8] (ξ padded) for one block of 4 output channels at a time,
//      derived from the direct payload (winograd-weights.ts)

/** Loads 8 channels of input pixel (y, x) minus zx as i16, or zeros outside the input. */
// @ts-ignore: decorator
@inline function shifted8(input: usize, inH: i32, inW: i32, inC: i32, y: i32, x: i32, c: i32, zero: v128): v128 {
  if (<u32>y >= <u32>inH || <u32>x >= <u32>inW) return i16x8.splat(0);
  return i16x8.sub(v128.load8x8_u(input + <usize>((y * inW + x) * inC + c)), zero);
}

/** V = Bᵀ (d − zx) B for every 4x4 input tile (stride 2, starting at (−1, −1)), 8 channels at a time. */
export function winogradInput(
  input: usize, inH: i32, inW: i32, inC: i32, zx: i32, v: usize, tilesH: i32, tilesW: i32, part: i32, parts: i32,
): void {
  const cp = roundUp(inC, 8);
  const tiles = tilesH * tilesW;
  const xiStride = <usize>(tiles * cp * 2);
  const zero = i16x8.splat(<i16>zx);
  for (let ty = sliceStart(tilesH, part, parts), end = sliceEnd(tilesH, part, parts); ty < end; ty++) {
    for (let tx = 0; tx < tilesW; tx++) {
      const y0 = 2 * ty - 1, x0 = 2 * tx - 1;
      let dst = v + <usize>((ty * tilesW + tx) * cp * 2);
      for (let c = 0; c < cp; c += 8) {
        // Bᵀ d: combine the 4 rows, column by column.
        const d00 = shifted8(input, inH, inW, inC, y0, x0, c, zero), d01 = shifted8(input, inH, inW, inC, y0, x0 + 1, c, zero);
        const d02 = shifted8(input, inH, inW, inC, y0, x0 + 2, c, zero), d03 = shifted8(input, inH, inW, inC, y0, x0 + 3, c, zero);
        const d10 = shifted8(input, inH, inW, inC, y0 + 1, x0, c, zero), d11 = shifted8(input, inH, inW, inC, y0 + 1, x0 + 1, c, zero);
        const d12 = shifted8(input, inH, inW, inC, y0 + 1, x0 + 2, c, zero), d13 = shifted8(input, inH, inW, inC, y0 + 1, x0 + 3, c, zero);
        const d20 = shifted8(input, inH, inW, inC, y0 + 2, x0, c, zero), d21 = shifted8(input, inH, inW, inC, y0 + 2, x0 + 1, c, zero);
        const d22 = shifted8(input, inH, inW, inC, y0 + 2, x0 + 2, c, zero), d23 = shifted8(input, inH, inW, inC, y0 + 2, x0 + 3, c, zero);
        const d30 = shifted8(input, inH, inW, inC, y0 + 3, x0, c, zero), d31 = shifted8(input, inH, inW, inC, y0 + 3, x0 + 1, c, zero);
        const d32 = shifted8(input, inH, inW, inC, y0 + 3, x0 + 2, c, zero), d33 = shifted8(input, inH, inW, inC, y0 + 3, x0 + 3, c, zero);
        transformRow(dst, xiStride, 0, i16x8.sub(d00, d20), i16x8.sub(d01, d21), i16x8.sub(d02, d22), i16x8.sub(d03, d23));
        transformRow(dst, xiStride, 1, i16x8.add(d10, d20), i16x8.add(d11, d21), i16x8.add(d12, d22), i16x8.add(d13, d23));
        transformRow(dst, xiStride, 2, i16x8.sub(d20, d10), i16x8.sub(d21, d11), i16x8.sub(d22, d12), i16x8.sub(d23, d13));
        transformRow(dst, xiStride, 3, i16x8.sub(d10, d30), i16x8.sub(d11, d31), i16x8.sub(d12, d32), i16x8.sub(d13, d33));
        dst += 16;
      }
    }
  }
}

/** One row of (Bᵀ d) times B: stores V[row][0..3]. */
// @ts-ignore: decorator
@inline function transformRow(dst: usize, xiStride: usize, row: i32, a: v128, b: v128, c: v128, d: v128): void {
  const at = dst + <usize>(row * 4) * xiStride;
  v128.store(at, i16x8.sub(a, c));
  v128.store(at + xiStride, i16x8.add(b, c));
  v128.store(at + 2 * xiStride, i16x8.sub(c, b));
  v128.store(at + 3 * xiStride, i16x8.sub(b, d));
}

/**
 * The 16 products Σ_c U'·V for two tiles and four output channels at a time, then Y = Aᵀ M A,
 * Y >> 2, + bias, requantize, store the 2x2 outputs that lie inside the output.
 * `bias` holds the unfolded biases and the multipliers (winogradBias); each block's U' is derived
 * from the direct payload at `params` into this part's scratch (`scratchStride` bytes from
 * `scratch`: 512 bytes for the 16 x 2 x 4 int32 products, then the block of U'). Threads split
 * the output-channel blocks.
 */
export function winogradConv(
  v: usize, tilesH: i32, tilesW: i32, inC: i32, bias: usize, params: usize,
  outC: i32, output: usize, outH: i32, outW: i32, zo: i32, lo: i32, scratch: usize, scratchStride: i32, part: i32, parts: i32,
): void {
  const m = scratch + <usize>(part * scratchStride);
  const cp = roundUp(inC, 8);
  const tiles = tilesH * tilesW;
  const blocks = roundUp(outC, 4) / 4;
  const multiplier = bias + <usize>(blocks * 16);
  const u = m + 512;
  const xiStride = <usize>(tiles * cp * 2);
  for (let ob = sliceStart(blocks, part, parts), end = sliceEnd(blocks, part, parts); ob < end; ob++) {
    const channels = min(4, outC - ob * 4);
    const biasV = v128.load(bias + <usize>(ob * 16)), multV = v128.load(multiplier + <usize>(ob * 16));
    transformBlock(params + <usize>(blocks * 32), inC, ob, u);
    for (let t = 0; t < tiles; t += 2) {
      const t1 = t + 1 < tiles ? t + 1 : t;
      for (let xi = 0; xi < 16; xi++) {
        let w = u + <usize>(xi * positionBytes(inC));
        const pa = v + <usize>xi * xiStride + <usize>(t * cp * 2);
        const pb = v + <usize>xi * xiStride + <usize>(t1 * cp * 2);
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
        for (let c = 0; c < cp; c += 8) {
          const xa = v128.load(pa + <usize>(c * 2)), xb = v128.load(pb + <usize>(c * 2));
          const w0 = v128.load(w), w1 = v128.load(w, 16), w2 = v128.load(w, 32), w3 = v128.load(w, 48);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(xa, w0));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(xa, w1));
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(xa, w2));
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(xa, w3));
          b0 = i32x4.add(b0, i32x4.dot_i16x8_s(xb, w0));
          b1 = i32x4.add(b1, i32x4.dot_i16x8_s(xb, w1));
          b2 = i32x4.add(b2, i32x4.dot_i16x8_s(xb, w2));
          b3 = i32x4.add(b3, i32x4.dot_i16x8_s(xb, w3));
          w += 64;
        }
        v128.store(m + <usize>(xi * 16), sum4(a0, a1, a2, a3));
        v128.store(m + <usize>(256 + xi * 16), sum4(b0, b1, b2, b3));
      }
      storeTile(m, t, tilesW, biasV, multV, output, outH, outW, outC, ob, channels, zo, lo);
      if (t1 != t) storeTile(m + 256, t1, tilesW, biasV, multV, output, outH, outW, outC, ob, channels, zo, lo);
    }
  }
}

/** Output transform of one tile's 16 products (4 channels per lane group) and the store. */
function storeTile(
  m: usize, t: i32, tilesW: i32, biasV: v128, multV: v128,
  output: usize, outH: i32, outW: i32, outC: i32, ob: i32, channels: i32, zo: i32, lo: i32,
): void {
  // Aᵀ M: rows 0+1+2 and 1−2−3, for each of the 4 columns.
  const s0 = colSum(m, 0), s1 = colSum(m, 1), s2 = colSum(m, 2), s3 = colSum(m, 3);
  const d0 = colDiff(m, 0), d1 = colDiff(m, 1), d2 = colDiff(m, 2), d3 = colDiff(m, 3);
  const oy = (t / tilesW) * 2, ox = (t % tilesW) * 2;
  storeOutput(i32x4.add(i32x4.add(s0, s1), s2), oy, ox, biasV, multV, output, outH, outW, outC, ob, channels, zo, lo);
  storeOutput(i32x4.sub(i32x4.sub(s1, s2), s3), oy, ox + 1, biasV, multV, output, outH, outW, outC, ob, channels, zo, lo);
  storeOutput(i32x4.add(i32x4.add(d0, d1), d2), oy + 1, ox, biasV, multV, output, outH, outW, outC, ob, channels, zo, lo);
  storeOutput(i32x4.sub(i32x4.sub(d1, d2), d3), oy + 1, ox + 1, biasV, multV, output, outH, outW, outC, ob, channels, zo, lo);
}

// @ts-ignore: decorator
@inline function colSum(m: usize, col: i32): v128 {
  const at = m + <usize>(col * 16);
  return i32x4.add(i32x4.add(v128.load(at), v128.load(at, 64)), v128.load(at, 128));
}

// @ts-ignore: decorator
@inline function colDiff(m: usize, col: i32): v128 {
  const at = m + <usize>(col * 16);
  return i32x4.sub(i32x4.sub(v128.load(at, 64), v128.load(at, 128)), v128.load(at, 192));
}

// @ts-ignore: decorator
@inline function storeOutput(
  y4: v128, oy: i32, ox: i32, biasV: v128, multV: v128,
  output: usize, outH: i32, outW: i32, outC: i32, ob: i32, channels: i32, zo: i32, lo: i32,
): void {
  if (oy >= outH || ox >= outW) return;
  const acc = i32x4.add(i32x4.shr_s(y4, 2), biasV);
  const q = narrow4(requantize4(acc, multV, zo, lo));
  storeChannels(output + <usize>((oy * outW + ox) * outC + ob * 4), q, channels);
}
