import { sum4 } from './requantize';
import { roundUp } from './conv';
import { sliceStart, sliceEnd } from './parts';
import { positionBytes, transformBlock } from './winograd-weights';
import { inputTile2, outputTile2 } from './winograd-f2';
import { inputTile4, outputTile4 } from './winograd-f4';

// Integer Winograd for 3x3 stride-1 pad-1 convolutions, bit-exact with the direct kernel:
// F(2x2, 3x3) (winograd-f2.ts) and F(4x4, 3x3) (winograd-f4.ts). Scaling G makes every transform
// an integer matrix; the output transform yields a known multiple of the exact integer
// convolution, which is divided out exactly, so requantization sees the same int32 accumulator as
// the direct path. The products run through i32x4.dot_i16x8_s: per output, 4 multiplies with
// F(2x2) and 2.25 with F(4x4), against 9 direct.
//
// A tile of `tile` x `tile` outputs reads (tile + 2)² inputs; ξ numbers those positions row-major.
// Layouts (Cp = channels rounded up to 8, T = tiles):
//   V  int16 [ξ][T][Cp] (ξ padded)                  the transformed input tiles
//   U  int16 [ξ][Cp/8][4 channels][8] (ξ padded)    one block of 4 output channels at a time,
//      derived from the direct payload (winograd-weights.ts)
//   M  int32 [2 tiles][ξ][4 channels]               a tile pair's products, in the thread's scratch
//   S  int32 [2 tiles][tile²][4 channels]           their exact outputs summed over channel chunks
//
// F(4x4) is exact only while each accumulator stays below 2^25, so wide layers may sum the input
// channels in chunks: each chunk's products are transformed and divided on their own, and the
// exact results add up (S) before requantization.

/** Transform positions of a tile: 16 for F(2x2), 36 for F(4x4). */
// @ts-ignore: decorator
@inline function positions(tile: i32): i32 {
  return (tile + 2) * (tile + 2);
}

/** Bytes of a thread's products M and sums S (two tiles each), before its block of U' in the scratch. */
// @ts-ignore: decorator
@inline function productBytes(tile: i32): i32 {
  return 2 * 16 * (positions(tile) + tile * tile);
}

/**
 * Bytes from one position ξ of V to the next: the tiles, plus a cache line, so that a tile's 36 or
 * 16 values do not fall in one cache set when tiles · Cp is a power of two (14x14x256 under F(4x4):
 * its input transform took 18 times as long).
 */
// @ts-ignore: decorator
@inline export function positionStride(tiles: i32, cp: i32): usize {
  return <usize>(tiles * cp * 2 + 64);
}

/** V for every input tile (stride `tile`, starting at (−1, −1)), 8 channels at a time. */
export function winogradInput(
  input: usize, inH: i32, inW: i32, inC: i32, zx: i32, v: usize, tile: i32, tilesH: i32, tilesW: i32, part: i32, parts: i32, thread: i32,
): void {
  const cp = roundUp(inC, 8);
  const xiStride = positionStride(tilesH * tilesW, cp);
  const zero = i16x8.splat(<i16>zx);
  for (let ty = sliceStart(tilesH, part, parts), end = sliceEnd(tilesH, part, parts); ty < end; ty++) {
    for (let tx = 0; tx < tilesW; tx++) {
      const y0 = tile * ty - 1, x0 = tile * tx - 1;
      let dst = v + <usize>((ty * tilesW + tx) * cp * 2);
      for (let c = 0; c < cp; c += 8) {
        if (tile == 4) inputTile4(input, inH, inW, inC, y0, x0, c, zero, dst, xiStride);
        else inputTile2(input, inH, inW, inC, y0, x0, c, zero, dst, xiStride);
        dst += 16;
      }
    }
  }
}

/**
 * The products Σ_c U'·V for two tiles and four output channels at a time, over `chunk` input
 * channels at a time (a multiple of 8), then the output transform, summed over the chunks, + bias,
 * requantize, store the outputs that lie inside the output.
 * `bias` holds the unfolded biases and the multipliers (winogradBias); each block's U' is derived
 * from the direct payload at `params` into the calling thread's scratch (`thread · scratchStride`
 * bytes past `scratch`: M and S, then the block of U'). Threads split the output-channel blocks.
 */
export function winogradConv(
  v: usize, tile: i32, chunk: i32, tilesH: i32, tilesW: i32, inC: i32, bias: usize, params: usize,
  outC: i32, output: usize, outH: i32, outW: i32, zo: i32, lo: i32, scratch: usize, scratchStride: i32, part: i32, parts: i32, thread: i32,
): void {
  const m = scratch + <usize>(thread * scratchStride);
  const cp = roundUp(inC, 8);
  const tiles = tilesH * tilesW;
  const blocks = roundUp(outC, 4) / 4;
  const multiplier = bias + <usize>(blocks * 16);
  const xis = positions(tile);
  const sums = m + <usize>(2 * 16 * xis);
  const u = m + <usize>productBytes(tile);
  const xiStride = positionStride(tiles, cp);
  for (let ob = sliceStart(blocks, part, parts), end = sliceEnd(blocks, part, parts); ob < end; ob++) {
    const channels = min(4, outC - ob * 4);
    const biasAt = bias + <usize>(ob * 16), multAt = multiplier + <usize>(ob * 16);
    const block = output + <usize>(ob * 4);
    transformBlock(params + <usize>(blocks * 32), inC, ob, u, tile);
    for (let t = 0; t < tiles; t += 2) {
      const t1 = t + 1 < tiles ? t + 1 : t;
      for (let c0 = 0; c0 < cp; c0 += chunk) {
        const c1 = min(c0 + chunk, cp);
        products(v, u, xiStride, xis, inC, t, t1, c0, c1 - c0, m);
        const first = c0 == 0, last = c1 == cp;
        storeTile(m, sums, first, last, t, tile, tilesW, biasAt, multAt, block, outH, outW, outC, channels, zo, lo);
        if (t1 != t) storeTile(m + <usize>(xis * 16), sums + <usize>(tile * tile * 16), first, last, t1, tile, tilesW, biasAt, multAt, block, outH, outW, outC, channels, zo, lo);
      }
    }
  }
}

/**
 * M for tiles `ta` and `tb`: Σ of U'·V at every position, over `channels` input channels from c0.
 * The channel loop steps one pointer (tile b's values are a fixed distance on) and ends on an
 * address, so V8 keeps it at 6 loads and 16 operations per 64 MACs plus 3 of control: indexed
 * from each position's base it ran 17% more instructions.
 */
// @ts-ignore: decorator
@inline function products(v: usize, u: usize, xiStride: usize, xis: i32, inC: i32, ta: i32, tb: i32, c0: i32, channels: i32, m: usize): void {
  const cp = roundUp(inC, 8);
  const uStride = <usize>positionBytes(inC);
  const toB = <usize>((tb - ta) * cp * 2);
  const bytes = <usize>(channels * 2);
  let uAt = u + <usize>(c0 * 8);
  let vAt = v + <usize>((ta * cp + c0) * 2);
  for (let xi = 0; xi < xis; xi++) {
    let w = uAt, x = vAt;
    const end = vAt + bytes;
    // The first step sets the accumulators: no zeroing and 8 adds fewer per position.
    let xa = v128.load(x), xb = v128.load(x + toB);
    let w0 = v128.load(w), w1 = v128.load(w, 16), w2 = v128.load(w, 32), w3 = v128.load(w, 48);
    let a0 = i32x4.dot_i16x8_s(xa, w0), a1 = i32x4.dot_i16x8_s(xa, w1), a2 = i32x4.dot_i16x8_s(xa, w2), a3 = i32x4.dot_i16x8_s(xa, w3);
    let b0 = i32x4.dot_i16x8_s(xb, w0), b1 = i32x4.dot_i16x8_s(xb, w1), b2 = i32x4.dot_i16x8_s(xb, w2), b3 = i32x4.dot_i16x8_s(xb, w3);
    for (w += 64, x += 16; x < end; w += 64, x += 16) {
      xa = v128.load(x);
      xb = v128.load(x + toB);
      w0 = v128.load(w);
      w1 = v128.load(w, 16);
      w2 = v128.load(w, 32);
      w3 = v128.load(w, 48);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(xa, w0));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(xa, w1));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(xa, w2));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(xa, w3));
      b0 = i32x4.add(b0, i32x4.dot_i16x8_s(xb, w0));
      b1 = i32x4.add(b1, i32x4.dot_i16x8_s(xb, w1));
      b2 = i32x4.add(b2, i32x4.dot_i16x8_s(xb, w2));
      b3 = i32x4.add(b3, i32x4.dot_i16x8_s(xb, w3));
    }
    v128.store(m + <usize>(xi * 16), sum4(a0, a1, a2, a3));
    v128.store(m + <usize>((xis + xi) * 16), sum4(b0, b1, b2, b3));
    uAt += uStride;
    vAt += xiStride;
  }
}

// @ts-ignore: decorator
@inline function storeTile(
  m: usize, sums: usize, first: bool, last: bool, t: i32, tile: i32, tilesW: i32, bias: usize, multiplier: usize,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  const oy = (t / tilesW) * tile, ox = (t % tilesW) * tile;
  if (tile == 4) outputTile4(m, sums, first, last, oy, ox, bias, multiplier, block, outH, outW, outC, channels, zo, lo);
  else outputTile2(m, sums, first, last, oy, ox, bias, multiplier, block, outH, outW, outC, channels, zo, lo);
}
