import { roundUp } from './conv';

// Winograd weights U' from a direct 3x3 payload (docs/FORMAT.md), one block of 4 output channels
// at a time, 8 input channels per vector. U' takes 32 bytes per 3x3 filter with F(2x2) and 72 with
// F(4x4), against the payload's 9, so it is never stored: winogradConv derives each block just before it uses it,
// into a per-thread scratch that stays in cache for all of the layer's tiles. Measured on
// ResNet-18 (1 thread) that is as fast as reading U' precomputed, down to the 7x7 maps (1.63 ms
// against 1.60 ms for 512→512), and ResNet-50 loads in 1.3x its file instead of 2.4x.
//
// Direct payload: int32 bias[OCp], f32 multiplier[OCp], int8 [ob][tap][Cp/8][4 channels][8].
// At load: int32 bias[OCp] (zero point unfolded), f32 multiplier[OCp].
// A block: int16 U' [ξ][Cp/8][4 channels][8] with ξ = row·(tile + 2) + col of the transform, each
// ξ padded (positionBytes).

/**
 * Bytes of one position ξ of a block: Cp/8 x 4 channels x 8 int16, plus a cache line, so that the
 * 16 positions a filter's U' is written to do not all fall in one cache set (at 512 channels the
 * unpadded stride is 4 KiB: deriving a block then took three times as long).
 */
// @ts-ignore: decorator
@inline export function positionBytes(cin: i32): i32 {
  return roundUp(cin, 8) * 8 + 64;
}

/**
 * The bias with the input zero point unfolded (Winograd works on d − zx, the direct kernel on d),
 * then the multipliers.
 */
export function winogradBias(params: usize, cin: i32, cout: i32, zx: i32, out: usize): void {
  const ocp = roundUp(cout, 4);
  const direct = params + <usize>(ocp * 8);
  memory.copy(out + <usize>(ocp * 4), params + <usize>(ocp * 4), <usize>(ocp * 4));
  for (let ob = 0; ob < ocp / 4; ob++) {
    const at = <usize>(ob * 16);
    const sums = blockSums(direct, cin, ob, 0, roundUp(cin, 8), false);
    v128.store(out + at, i32x4.add(v128.load(params + at), i32x4.mul(sums, i32x4.splat(zx))));
  }
}

/**
 * The largest Σ|w| of a filter over input channels [c0, c1) (multiples of 8): with the input's
 * largest |d − zx| it bounds the exact accumulator, which decides whether F(4x4) is exact
 * (winograd-f4.ts).
 */
export function largestFilterNorm(params: usize, cin: i32, cout: i32, c0: i32, c1: i32): i32 {
  const ocp = roundUp(cout, 4);
  const direct = params + <usize>(ocp * 8);
  let largest = i32x4.splat(0);
  for (let ob = 0; ob < ocp / 4; ob++) largest = i32x4.max_s(largest, blockSums(direct, cin, ob, c0, c1, true));
  return max(max(i32x4.extract_lane(largest, 0), i32x4.extract_lane(largest, 1)), max(i32x4.extract_lane(largest, 2), i32x4.extract_lane(largest, 3)));
}

/**
 * Σ over input channels [c0, c1) of each of block ob's 4 filters' weights, or of their magnitudes,
 * as 4 int32 lanes (padding channels and filters are zero). A group holds 8 weights of each of the
 * 4 filters: pairwise sums to i16, then to i32 lanes [j0, j0, j1, j1] and [j2, j2, j3, j3].
 */
function blockSums(direct: usize, cin: i32, ob: i32, c0: i32, c1: i32, magnitudes: bool): v128 {
  const groups = roundUp(cin, 8) / 8;
  let first = i32x4.splat(0), second = i32x4.splat(0);
  for (let tap = 0; tap < 9; tap++) {
    for (let g = c0 / 8; g < c1 / 8; g++) {
      const at = direct + <usize>(((ob * 9 + tap) * groups + g) * 32);
      first = i32x4.add(first, pairSums(v128.load(at), magnitudes));
      second = i32x4.add(second, pairSums(v128.load(at, 16), magnitudes));
    }
  }
  return i32x4.add(i32x4.shuffle(first, second, 0, 2, 4, 6), i32x4.shuffle(first, second, 1, 3, 5, 7));
}

/** 16 int8 (or their magnitudes, 128 for −128 read unsigned) summed in fours into 4 int32 lanes. */
// @ts-ignore: decorator
@inline function pairSums(w: v128, magnitudes: bool): v128 {
  return magnitudes
    ? i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(i8x16.abs(w)))
    : i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(w));
}

/**
 * U' of output-channel block `ob` for F(tile x tile, 3x3) (winograd-f2.ts, winograd-f4.ts), from
 * the weights of a direct payload, written at `dst`.
 */
export function transformBlock(direct: usize, cin: i32, ob: i32, dst: usize, tile: i32): void {
  const groups = roundUp(cin, 8) / 8;
  const tapStride = <usize>(groups * 32);
  const xiStride = <usize>positionBytes(cin);
  for (let g = 0; g < groups; g++) {
    for (let j = 0; j < 4; j++) {
      // g[ky][kx] sits at tap ky·3+kx: 8 input channels of output channel 4·ob + j.
      const at = direct + <usize>((((ob * 9) * groups + g) * 4 + j) * 8);
      const g0 = v128.load8x8_s(at), g1 = v128.load8x8_s(at + tapStride), g2 = v128.load8x8_s(at + 2 * tapStride);
      const g3 = v128.load8x8_s(at + 3 * tapStride), g4 = v128.load8x8_s(at + 4 * tapStride), g5 = v128.load8x8_s(at + 5 * tapStride);
      const g6 = v128.load8x8_s(at + 6 * tapStride), g7 = v128.load8x8_s(at + 7 * tapStride), g8 = v128.load8x8_s(at + 8 * tapStride);
      const to = dst + <usize>((g * 4 + j) * 16);
      if (tile == 4) filter4(to, xiStride, g0, g1, g2, g3, g4, g5, g6, g7, g8);
      else filter2(to, xiStride, g0, g1, g2, g3, g4, g5, g6, g7, g8);
    }
  }
}

/** (2G) g (2G)ᵀ of one 3x3 filter (8 channels): rows of (2G) g (rows 1 and 2 share g0 + g6), each times (2G)ᵀ. */
// @ts-ignore: decorator
@inline function filter2(to: usize, xiStride: usize, g0: v128, g1: v128, g2: v128, g3: v128, g4: v128, g5: v128, g6: v128, g7: v128, g8: v128): void {
  const step = xiStride * 4;
  const e0 = i16x8.add(g0, g6), e1 = i16x8.add(g1, g7), e2 = i16x8.add(g2, g8);
  row2(to, xiStride, i16x8.shl(g0, 1), i16x8.shl(g1, 1), i16x8.shl(g2, 1));
  row2(to + step, xiStride, i16x8.add(e0, g3), i16x8.add(e1, g4), i16x8.add(e2, g5));
  row2(to + 2 * step, xiStride, i16x8.sub(e0, g3), i16x8.sub(e1, g4), i16x8.sub(e2, g5));
  row2(to + 3 * step, xiStride, i16x8.shl(g6, 1), i16x8.shl(g7, 1), i16x8.shl(g8, 1));
}

/** One row (a, b, c) times (2G)ᵀ: four U' values. */
// @ts-ignore: decorator
@inline function row2(at: usize, xiStride: usize, a: v128, b: v128, c: v128): void {
  const ac = i16x8.add(a, c);
  v128.store(at, i16x8.shl(a, 1));
  v128.store(at + xiStride, i16x8.add(ac, b));
  v128.store(at + 2 * xiStride, i16x8.sub(ac, b));
  v128.store(at + 3 * xiStride, i16x8.shl(c, 1));
}

/** G' g G'ᵀ of one 3x3 filter (8 channels): the 6 rows of G' g, each times G'ᵀ. */
// @ts-ignore: decorator
@inline function filter4(to: usize, xiStride: usize, g0: v128, g1: v128, g2: v128, g3: v128, g4: v128, g5: v128, g6: v128, g7: v128, g8: v128): void {
  const step = xiStride * 6;
  const e0 = i16x8.add(g0, g6), e1 = i16x8.add(g1, g7), e2 = i16x8.add(g2, g8);
  const f0 = i16x8.add(g0, i16x8.shl(g6, 2)), f1 = i16x8.add(g1, i16x8.shl(g7, 2)), f2 = i16x8.add(g2, i16x8.shl(g8, 2));
  const h0 = i16x8.shl(g3, 1), h1 = i16x8.shl(g4, 1), h2 = i16x8.shl(g5, 1);
  row4(to, xiStride, g0, g1, g2);
  row4(to + step, xiStride, i16x8.neg(i16x8.add(e0, g3)), i16x8.neg(i16x8.add(e1, g4)), i16x8.neg(i16x8.add(e2, g5)));
  row4(to + 2 * step, xiStride, i16x8.sub(g3, e0), i16x8.sub(g4, e1), i16x8.sub(g5, e2));
  row4(to + 3 * step, xiStride, i16x8.add(f0, h0), i16x8.add(f1, h1), i16x8.add(f2, h2));
  row4(to + 4 * step, xiStride, i16x8.sub(f0, h0), i16x8.sub(f1, h1), i16x8.sub(f2, h2));
  row4(to + 5 * step, xiStride, g6, g7, g8);
}

/** One row (a, b, c) times G'ᵀ: six U' values. */
// @ts-ignore: decorator
@inline function row4(at: usize, xiStride: usize, a: v128, b: v128, c: v128): void {
  const e = i16x8.add(a, c), f = i16x8.add(a, i16x8.shl(c, 2)), h = i16x8.shl(b, 1);
  v128.store(at, a);
  v128.store(at + xiStride, i16x8.neg(i16x8.add(e, b)));
  v128.store(at + 2 * xiStride, i16x8.sub(b, e));
  v128.store(at + 3 * xiStride, i16x8.add(f, h));
  v128.store(at + 4 * xiStride, i16x8.sub(f, h));
  v128.store(at + 5 * xiStride, c);
}
