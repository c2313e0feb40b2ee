import { chunkRow, shifted8 } from './winograd-shared';

// F(2x2, 3x3) with G scaled by 2 (winograd.ts):
//   weights U' = (2G) g (2G)ᵀ = 4U     |U'| ≤ 9·127 = 1143: int16
//   inputs  V  = Bᵀ (d − zx) B         |V|  ≤ 4·255 = 1020: int16
//   Aᵀ [Σ_c U'·V] A = 4 · the exact convolution, |·| < 2^31 for any channel count: >> 2 is exact.

/** V = Bᵀ (d − zx) B of the 4x4 input tile at (y0, x0), 8 channels from c, stored at dst + ξ·xiStride. */
// @ts-ignore: decorator
@inline export function inputTile2(
  input: usize, inH: i32, inW: i32, inC: i32, y0: i32, x0: i32, c: i32, zero: v128, dst: usize, xiStride: usize,
): void {
  // Bᵀ d: combine the 4 rows, column by column.
  const d00 = shifted8(input, inH, inW, inC, y0, x0, c, zero), d01 = shifted8(input, inH, inW, inC, y0, x0 + 1, c, zero);
  const d02 = shifted8(input, inH, inW, inC, y0, x0 + 2, c, zero), d03 = shifted8(input, inH, inW, inC, y0, x0 + 3, c, zero);
  const d10 = shifted8(input, inH, inW, inC, y0 + 1, x0, c, zero), d11 = shifted8(input, inH, inW, inC, y0 + 1, x0 + 1, c, zero);
  const d12 = shifted8(input, inH, inW, inC, y0 + 1, x0 + 2, c, zero), d13 = shifted8(input, inH, inW, inC, y0 + 1, x0 + 3, c, zero);
  const d20 = shifted8(input, inH, inW, inC, y0 + 2, x0, c, zero), d21 = shifted8(input, inH, inW, inC, y0 + 2, x0 + 1, c, zero);
  const d22 = shifted8(input, inH, inW, inC, y0 + 2, x0 + 2, c, zero), d23 = shifted8(input, inH, inW, inC, y0 + 2, x0 + 3, c, zero);
  const d30 = shifted8(input, inH, inW, inC, y0 + 3, x0, c, zero), d31 = shifted8(input, inH, inW, inC, y0 + 3, x0 + 1, c, zero);
  const d32 = shifted8(input, inH, inW, inC, y0 + 3, x0 + 2, c, zero), d33 = shifted8(input, inH, inW, inC, y0 + 3, x0 + 3, c, zero);
  inputRow(dst, xiStride, 0, i16x8.sub(d00, d20), i16x8.sub(d01, d21), i16x8.sub(d02, d22), i16x8.sub(d03, d23));
  inputRow(dst, xiStride, 1, i16x8.add(d10, d20), i16x8.add(d11, d21), i16x8.add(d12, d22), i16x8.add(d13, d23));
  inputRow(dst, xiStride, 2, i16x8.sub(d20, d10), i16x8.sub(d21, d11), i16x8.sub(d22, d12), i16x8.sub(d23, d13));
  inputRow(dst, xiStride, 3, i16x8.sub(d10, d30), i16x8.sub(d11, d31), i16x8.sub(d12, d32), i16x8.sub(d13, d33));
}

/** One row of (Bᵀ d) times B: stores V[row][0..3]. */
// @ts-ignore: decorator
@inline function inputRow(dst: usize, xiStride: usize, row: i32, a: v128, b: v128, c: v128, d: v128): void {
  const at = dst + <usize>(row * 4) * xiStride;
  v128.store(at, i16x8.sub(a, c));
  v128.store(at + xiStride, i16x8.add(b, c));
  v128.store(at + 2 * xiStride, i16x8.sub(c, b));
  v128.store(at + 3 * xiStride, i16x8.sub(b, d));
}

/** Y = Aᵀ M A of one tile's 16 products (4 channels each), / 4, to its 2x2 outputs, row by row (chunkRow, given each row's 2 outputs twice). */
export function outputTile2(
  m: usize, sums: usize, first: bool, last: bool, oy: i32, ox: i32, bias: usize, multiplier: usize,
  block: usize, outH: i32, outW: i32, outC: i32, channels: i32, zo: i32, lo: i32,
): void {
  const biasV = v128.load(bias), multV = v128.load(multiplier);
  // Aᵀ M: rows 0+1+2 and 1−2−3, for each of the 4 columns.
  const s0 = colSum(m, 0), s1 = colSum(m, 1), s2 = colSum(m, 2), s3 = colSum(m, 3);
  const d0 = colDiff(m, 0), d1 = colDiff(m, 1), d2 = colDiff(m, 2), d3 = colDiff(m, 3);
  const y00 = exact(i32x4.add(i32x4.add(s0, s1), s2)), y01 = exact(i32x4.sub(i32x4.sub(s1, s2), s3));
  const y10 = exact(i32x4.add(i32x4.add(d0, d1), d2)), y11 = exact(i32x4.sub(i32x4.sub(d1, d2), d3));
  chunkRow(y00, y01, y00, y01, 2, sums, first, last, oy, ox, biasV, multV, block, outH, outW, outC, channels, zo, lo);
  chunkRow(y10, y11, y10, y11, 2, sums + 32, first, last, oy + 1, ox, biasV, multV, block, outH, outW, outC, channels, zo, lo);
}

// @ts-ignore: decorator
@inline function exact(y4: v128): v128 {
  return i32x4.shr_s(y4, 2);
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
