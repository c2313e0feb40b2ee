import { chunkRow, shifted8 } from './winograd-shared';

// F(4x4, 3x3): 36 products per 16 outputs. Points 0, ±1, ±2, ∞; each row of G is scaled by the
// least integer that clears its fractions (4, 6, 6, 24, 24, 1), so with E = diag(6, 4, 4, 1, 1, 24):
//   weights U' = G' g G'ᵀ, G' = [1 0 0; −1 −1 −1; −1 1 −1; 1 2 4; 1 −2 4; 0 0 1]
//                                    |U'| ≤ 7·7·128 = 6272: int16
//   inputs  V  = Bᵀ (d − zx) B        |V|  ≤ 10·10·255 = 25500, every partial sum too: int16
//   (AᵀE) [Σ_c U'·V] (EA) = 576 · Y, Y the exact convolution, computed modulo 2^32 (int32 wraps).
// 576 = 9·2^6: multiplying by 9⁻¹ mod 2^32 gives 64·Y mod 2^32, and >> 6 gives Y exactly when
// |Y| < 2^25. The runtime takes this path only for layers where that holds for any input:
// max over filters of Σ|w| · max|d − zx| < 2^25 (src/runtime/conv-path.ts), else F(2x2).

/** 9⁻¹ modulo 2^32: 9 · 954437177 = 2^33 + 1. */
// @ts-ignore: decorator
@inline const INVERSE_9: i32 = 954437177;

/** V = Bᵀ (d − zx) B of the 6x6 input tile at (y0, x0), 8 channels from c, stored at dst + ξ·xiStride. */
// @ts-ignore: decorator
@inline export function inputTile4(
  input: usize, inH: i32, inW: i32, inC: i32, y0: i32, x0: i32, c: i32, zero: v128, dst: usize, xiStride: usize,
): void {
  // d B row by row into V's own slots, then Bᵀ (d B) column by column in place: 36 values do not fit in registers.
  for (let r = 0; r < 6; r++) {
    const y = y0 + r;
    inputTransform(dst + <usize>(6 * r) * xiStride, xiStride,
      shifted8(input, inH, inW, inC, y, x0, c, zero), shifted8(input, inH, inW, inC, y, x0 + 1, c, zero),
      shifted8(input, inH, inW, inC, y, x0 + 2, c, zero), shifted8(input, inH, inW, inC, y, x0 + 3, c, zero),
      shifted8(input, inH, inW, inC, y, x0 + 4, c, zero), shifted8(input, inH, inW, inC, y, x0 + 5, c, zero));
  }
  const rowStride = xiStride * 6;
  for (let j = 0; j < 6; j++) {
    const at = dst + <usize>j * xiStride;
    inputTransform(at, rowStride,
      v128.load(at), v128.load(at + rowStride), v128.load(at + 2 * rowStride),
      v128.load(at + 3 * rowStride), v128.load(at + 4 * rowStride), v128.load(at + 5 * rowStride));
  }
}

/** Bᵀ applied to six i16 vectors, stored at `at` + i·step. */
// @ts-ignore: decorator
@inline function inputTransform(at: usize, step: usize, d0: v128, d1: v128, d2: v128, d3: v128, d4: v128, d5: v128): void {
  const e = i16x8.sub(d4, d2), f = i16x8.shl(i16x8.sub(d3, d1), 1);
  v128.store(at, i16x8.add(i16x8.shl(i16x8.sub(d0, d2), 2), e));
  v128.store(at + step, i16x8.sub(i16x8.add(d3, d4), i16x8.shl(i16x8.add(d1, d2), 2)));
  v128.store(at + 2 * step, i16x8.add(i16x8.sub(d4, d3), i16x8.shl(i16x8.sub(d1, d2), 2)));
  v128.store(at + 3 * step, i16x8.add(e, f));
  v128.store(at + 4 * step, i16x8.sub(e, f));
  v128.store(at + 5 * step, i16x8.add(i16x8.shl(i16x8.sub(d1, d3), 2), i16x8.sub(d5, d3)));
}

/** (AᵀE) M (EA) of one tile's 36 products (4 channels each), / 576, row by row to its 4x4 outputs (chunkRow). */
export function outputTile4(
  m: usize, sums: usize, first: bool, last: bool, oy: i32, ox: i32, bias: usize, multiplier: usize,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  const biasV = v128.load(bias), multV = v128.load(multiplier);
  // Columns first, in place (rows 0..3 of each column), then the 4 rows to outputs.
  for (let j = 0; j < 6; j++) {
    const at = m + <usize>(j * 16);
    outputColumn(at, v128.load(at), v128.load(at, 96), v128.load(at, 192), v128.load(at, 288), v128.load(at, 384), v128.load(at, 480));
  }
  for (let i = 0; i < 4; i++) {
    const at = m + <usize>(i * 96);
    const t0 = v128.load(at), t1 = v128.load(at, 16), t2 = v128.load(at, 32), t3 = v128.load(at, 48), t4 = v128.load(at, 64), t5 = v128.load(at, 80);
    const a = i32x4.add(t1, t2), b = i32x4.sub(t1, t2), c = i32x4.add(t3, t4), d = i32x4.sub(t3, t4);
    chunkRow(exact(aeRow0(t0, a, c)), exact(aeRow1(b, d)), exact(aeRow2(a, c)), exact(aeRow3(b, d, t5)), 4, sums + <usize>(i * 64),
      first, last, oy + i, ox, biasV, multV, block, outH, outW, outC, channels, zo, lo);
  }
}

/** AᵀE applied to one column of M: its rows 0..3 replaced by the four results. */
// @ts-ignore: decorator
@inline function outputColumn(at: usize, m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128): void {
  const a = i32x4.add(m1, m2), b = i32x4.sub(m1, m2), c = i32x4.add(m3, m4), d = i32x4.sub(m3, m4);
  v128.store(at, aeRow0(m0, a, c));
  v128.store(at, aeRow1(b, d), 96);
  v128.store(at, aeRow2(a, c), 192);
  v128.store(at, aeRow3(b, d, m5), 288);
}

// The rows of AᵀE = [6 4 4 1 1 0; 0 4 −4 2 −2 0; 0 4 4 4 4 0; 0 4 −4 8 −8 24] applied to m0..m5,
// with a = m1 + m2, b = m1 − m2, c = m3 + m4, d = m3 − m4.

// @ts-ignore: decorator
@inline function aeRow0(m0: v128, a: v128, c: v128): v128 {
  return i32x4.add(i32x4.add(i32x4.mul(m0, i32x4.splat(6)), i32x4.shl(a, 2)), c);
}

// @ts-ignore: decorator
@inline function aeRow1(b: v128, d: v128): v128 {
  return i32x4.shl(i32x4.add(i32x4.shl(b, 1), d), 1);
}

// @ts-ignore: decorator
@inline function aeRow2(a: v128, c: v128): v128 {
  return i32x4.shl(i32x4.add(a, c), 2);
}

// @ts-ignore: decorator
@inline function aeRow3(b: v128, d: v128, m5: v128): v128 {
  return i32x4.shl(i32x4.add(i32x4.add(b, i32x4.shl(d, 1)), i32x4.mul(m5, i32x4.splat(6))), 2);
}

/** 576·Y modulo 2^32 → Y (exact for |Y| < 2^25). */
// @ts-ignore: decorator
@inline function exact(y4: v128): v128 {
  return i32x4.shr_s(i32x4.mul(y4, i32x4.splat(INVERSE_9)), 6);
}
