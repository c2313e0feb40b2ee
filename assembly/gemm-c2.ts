import { requantize4 } from './requantize';
import { storePartial } from './partial';
import { tapAddress } from './conv';

// gemm's layout in the baseline build (i32x4.dot_i16x8_s): 4 output pixels x 8 output channels per
// micro-kernel step, each accumulator lane one output channel, as XNNPACK's "c2" kernels lay out
// their operands. A dot multiplies one pixel's pair of input channels, splatted to all four lanes,
// by four filters' weights for that pair, so the sums need no horizontal fold before
// requantization. Per 2 input channels: 2 weight loads, 4 splat loads, 8 dots and 8 adds on 8
// accumulators (12 xmm registers in all); gemm's former 2 x 4 tile of 4 partial sums per channel
// took the same loads per dot but folded 8 vectors and requantized 8 outputs per 2 x 4 tile.
//
// Prepared weights, per pair of blocks (8 filters) and per 8 input channels: for each channel pair
// k, 16 bytes [w0(2k) w0(2k+1) w1(2k) w1(2k+1) .. w3(2k+1)] (i16) of the first block, then 16 of
// the second. Gathered pixels, per quad of output pixels and per 8 input channels: for each pair k,
// 16 bytes [p0(2k) p0(2k+1) p1(2k) .. p3(2k+1)] (i16).

/** Bytes of a pair of prepared blocks. */
// @ts-ignore: decorator
@inline function pairBytes(cp: i32): usize {
  return <usize>cp * 16;
}

/** Bytes of a quad of gathered pixels. */
// @ts-ignore: decorator
@inline function quadBytes(cp: i32): usize {
  return <usize>cp * 8;
}

/** Stores the 4 x 4 i32 matrix of rows r0..r3 transposed: column k at `to + k · step`. */
// @ts-ignore: decorator
@inline function storeColumns(to: usize, step: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5);
  const t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(to, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(to + step, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(to + 2 * step, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(to + 3 * step, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/**
 * `count` packed blocks from `block` (cp x 4 bytes each), widened and laid out in pairs into
 * `scratch`; an odd count's last pair gets a block of zero weights, whose outputs are never stored.
 */
export function prepareGroupC2(block: usize, count: i32, cp: i32, scratch: usize): usize {
  const blockBytes = <usize>cp * 4;
  for (let b = 0; b < count; b += 2) {
    const a = block + <usize>b * blockBytes;
    const to = scratch + <usize>(b >> 1) * pairBytes(cp);
    for (let g = 0; g < cp; g += 8) {
      const at = a + <usize>(g * 4);
      const into = to + <usize>(g * 16);
      storeColumns(into, 32, v128.load8x8_s(at), v128.load8x8_s(at, 8), v128.load8x8_s(at, 16), v128.load8x8_s(at, 24));
      if (b + 1 < count) {
        const next = at + blockBytes;
        storeColumns(into + 16, 32, v128.load8x8_s(next), v128.load8x8_s(next, 8), v128.load8x8_s(next, 16), v128.load8x8_s(next, 24));
      } else {
        const zero = i32x4.splat(0);
        storeColumns(into + 16, 32, zero, zero, zero, zero);
      }
    }
  }
  return scratch;
}

/**
 * `n` input pixels into `chunk`, in quads, from `row` + ox · pixelStep on, the next row after outW
 * of them; a last quad's missing pixels repeat its last pixel.
 */
export function gatherQuads(row: usize, ox: i32, outW: i32, pixelStep: usize, rowStep: usize, cp: i32, n: i32, chunk: usize): void {
  for (let i = 0; i < n; i += 4) {
    const f0 = row + <usize>ox * pixelStep;
    if (i + 1 < n && ++ox == outW) { ox = 0; row += rowStep; }
    const f1 = row + <usize>ox * pixelStep;
    if (i + 2 < n && ++ox == outW) { ox = 0; row += rowStep; }
    const f2 = row + <usize>ox * pixelStep;
    if (i + 3 < n && ++ox == outW) { ox = 0; row += rowStep; }
    const f3 = row + <usize>ox * pixelStep;
    if (++ox == outW) { ox = 0; row += rowStep; }
    packQuad(f0, f1, f2, f3, cp, chunk + <usize>(i >> 2) * quadBytes(cp));
  }
}

/**
 * `n` output pixels from (oy, ox) on, each its kh x kw taps of cp channels (a tap in the padding
 * reads `padRow`), into `chunk` in quads of K = kh·kw·cp channels, tap by tap (the order of the
 * packed weights); a last quad's missing pixels repeat its last pixel.
 */
export function gatherTapQuads(
  input: usize, inH: i32, inW: i32, inC: i32, kh: i32, kw: i32, stride: i32, pad: i32, padRow: usize,
  oy: i32, ox: i32, outW: i32, cp: i32, n: i32, chunk: usize,
): void {
  for (let i = 0; i < n; i += 4) {
    const y0 = oy * stride - pad, x0 = ox * stride - pad;
    if (i + 1 < n && ++ox == outW) { ox = 0; oy++; }
    const y1 = oy * stride - pad, x1 = ox * stride - pad;
    if (i + 2 < n && ++ox == outW) { ox = 0; oy++; }
    const y2 = oy * stride - pad, x2 = ox * stride - pad;
    if (i + 3 < n && ++ox == outW) { ox = 0; oy++; }
    const y3 = oy * stride - pad, x3 = ox * stride - pad;
    if (++ox == outW) { ox = 0; oy++; }
    let to = chunk + <usize>(i >> 2) * quadBytes(kh * kw * cp);
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        packQuad(
          tapAddress(input, inH, inW, inC, y0 + ky, x0 + kx, padRow),
          tapAddress(input, inH, inW, inC, y1 + ky, x1 + kx, padRow),
          tapAddress(input, inH, inW, inC, y2 + ky, x2 + kx, padRow),
          tapAddress(input, inH, inW, inC, y3 + ky, x3 + kx, padRow),
          cp, to,
        );
        to += quadBytes(cp);
      }
    }
  }
}

/** The cp channels of 4 pixels at f0..f3 as a quad's (or one tap's part of a quad's) activations at `to`. */
// @ts-ignore: decorator
@inline function packQuad(f0: usize, f1: usize, f2: usize, f3: usize, cp: i32, to: usize): void {
  for (let c = 0; c < cp; c += 8) {
    const from = <usize>c;
    storeColumns(to + <usize>(c * 8), 16, v128.load8x8_u(f0 + from), v128.load8x8_u(f1 + from), v128.load8x8_u(f2 + from), v128.load8x8_u(f3 + from));
  }
}

/** The `n` gathered pixels at `chunk` times the prepared blocks [g0, g1) at `group`, into output rows from `out`. */
export function tilesC2(
  chunk: usize, n: i32, cp: i32, group: usize,
  params: usize, blocks: i32, g0: i32, g1: i32, outC: i32, out: usize, zo: i32, lo: i32,
): void {
  const last = min(outC, g1 * 4);
  // The pixels that quadTile computes: all but a lone last one.
  const quads = (n & 3) == 1 ? n - 1 : n;
  for (let ob = g0; ob < g1; ob += 2) {
    const w = group + <usize>((ob - g0) >> 1) * pairBytes(cp);
    const channels = min(8, last - ob * 4);
    const bias = params + <usize>(ob * 16);
    const multiplier = params + <usize>((blocks + ob) * 16);
    for (let i = 0; i < quads; i += 4) {
      quadTile(chunk + <usize>(i >> 2) * quadBytes(cp), cp, w, bias, multiplier, out + <usize>(i * outC + ob * 4), outC, min(4, quads - i), channels, zo, lo);
    }
    if (quads < n) pixelTile(chunk + <usize>(quads >> 2) * quadBytes(cp), cp, w, bias, multiplier, out + <usize>(quads * outC + ob * 4), channels, zo, lo);
  }
}

/**
 * One quad of pixels times one pair of blocks into `pixels` (1..4) rows of `channels` (1..8)
 * bytes from `out`. The bias and multiplier of the pair's second block follow the first's
 * (params' layout); past the last block they read other parameters, for outputs never stored.
 */
// @ts-ignore: decorator
@inline function quadTile(
  x0: usize, cp: i32, w0: usize, bias: usize, multiplier: usize,
  out: usize, outC: i32, pixels: i32, channels: i32, zo: i32, lo: i32,
): void {
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
  let w = w0;
  for (let x = x0, end = x0 + quadBytes(cp); x < end; x += 16) {
    const wa = v128.load(w);
    const wb = v128.load(w, 16);
    let s = v128.load32_splat(x);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(s, wa));
    b0 = i32x4.add(b0, i32x4.dot_i16x8_s(s, wb));
    s = v128.load32_splat(x, 4);
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(s, wa));
    b1 = i32x4.add(b1, i32x4.dot_i16x8_s(s, wb));
    s = v128.load32_splat(x, 8);
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(s, wa));
    b2 = i32x4.add(b2, i32x4.dot_i16x8_s(s, wb));
    s = v128.load32_splat(x, 12);
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(s, wa));
    b3 = i32x4.add(b3, i32x4.dot_i16x8_s(s, wb));
    w += 32;
  }
  const biasA = v128.load(bias), biasB = v128.load(bias, 16);
  const multA = v128.load(multiplier), multB = v128.load(multiplier, 16);
  const h0 = i16x8.narrow_i32x4_s(requantize4(i32x4.add(a0, biasA), multA, zo, lo), requantize4(i32x4.add(b0, biasB), multB, zo, lo));
  const h1 = i16x8.narrow_i32x4_s(requantize4(i32x4.add(a1, biasA), multA, zo, lo), requantize4(i32x4.add(b1, biasB), multB, zo, lo));
  const h2 = i16x8.narrow_i32x4_s(requantize4(i32x4.add(a2, biasA), multA, zo, lo), requantize4(i32x4.add(b2, biasB), multB, zo, lo));
  const h3 = i16x8.narrow_i32x4_s(requantize4(i32x4.add(a3, biasA), multA, zo, lo), requantize4(i32x4.add(b3, biasB), multB, zo, lo));
  const v01 = i8x16.narrow_i16x8_u(h0, h1);
  const v23 = i8x16.narrow_i16x8_u(h2, h3);
  const row = <usize>outC;
  if (pixels == 4 && channels == 8) {
    v128.store64_lane(out, v01, 0);
    v128.store64_lane(out + row, v01, 1);
    v128.store64_lane(out + 2 * row, v23, 0);
    v128.store64_lane(out + 3 * row, v23, 1);
    return;
  }
  storePartial(out, v01, channels);
  if (pixels > 1) storePartial(out + row, highHalf(v01), channels);
  if (pixels > 2) storePartial(out + 2 * row, v23, channels);
  if (pixels > 3) storePartial(out + 3 * row, highHalf(v23), channels);
}

/**
 * A chunk's lone last pixel, the only one of its quad (a 7x7 map is 12 quads + 1), times one pair
 * of blocks into `channels` (1..8) bytes at `out`: a quarter of the dots quadTile would spend.
 */
// @ts-ignore: decorator
@inline function pixelTile(
  x0: usize, cp: i32, w0: usize, bias: usize, multiplier: usize, out: usize, channels: i32, zo: i32, lo: i32,
): void {
  let a = i32x4.splat(0), b = i32x4.splat(0);
  let w = w0;
  for (let x = x0, end = x0 + quadBytes(cp); x < end; x += 16) {
    const s = v128.load32_splat(x);
    a = i32x4.add(a, i32x4.dot_i16x8_s(s, v128.load(w)));
    b = i32x4.add(b, i32x4.dot_i16x8_s(s, v128.load(w, 16)));
    w += 32;
  }
  const h = i16x8.narrow_i32x4_s(
    requantize4(i32x4.add(a, v128.load(bias)), v128.load(multiplier), zo, lo),
    requantize4(i32x4.add(b, v128.load(bias, 16)), v128.load(multiplier, 16), zo, lo),
  );
  storePartial(out, i8x16.narrow_i16x8_u(h, h), channels);
}

/** Bytes 8..15 of `v` in bytes 0..7. */
// @ts-ignore: decorator
@inline function highHalf(v: v128): v128 {
  return i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
}
