import { roundUp } from './conv';

// Winograd weights U' = (2G) g (2G)ᵀ from a direct 3x3 payload (docs/FORMAT.md), one block of 4
// output channels at a time, 8 input channels per vector. U' takes 32 bytes per 3x3 filter against
// the payload's 9, so it is never stored: winogradConv derives each block just before it uses it,
// into a per-thread scratch that stays in cache for all of the layer's tiles. Measured on
// ResNet-18 (1 thread) that is as fast as reading U' precomputed, down to the 7x7 maps (1.63 ms
// against 1.60 ms for 512→512), and ResNet-50 loads in 1.3x its file instead of 2.4x.
//
// Direct payload: int32 bias[OCp], f32 multiplier[OCp], int8 [ob][tap][Cp/8][4 channels][8].
// At load: int32 bias[OCp] (zero point unfolded), f32 multiplier[OCp].
// A block: int16 U' [ξ][Cp/8][4 channels][8] with ξ = 4·row + col of the 4x4 transform, each ξ
// padded (positionBytes).

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
  for (let o = 0; o < ocp; o++) {
    store<i32>(out + <usize>(o * 4), load<i32>(params + <usize>(o * 4)) + zx * filterSum(direct, cin, o));
  }
}

/** Σ of output channel o's 9·Cp weights (padding channels are zero). */
function filterSum(direct: usize, cin: i32, o: i32): i32 {
  const cp = roundUp(cin, 8);
  const ob = o >> 2, j = o & 3;
  let sum: i32 = 0;
  for (let tap = 0; tap < 9; tap++) {
    for (let g = 0; g < cp / 8; g++) {
      const at = direct + <usize>((((ob * 9 + tap) * (cp / 8) + g) * 4 + j) * 8);
      for (let c = 0; c < 8; c++) sum += <i32>load<i8>(at + <usize>c);
    }
  }
  return sum;
}

/** U' of output-channel block `ob` from the weights of a direct payload, written at `dst`. */
export function transformBlock(direct: usize, cin: i32, ob: i32, dst: usize): void {
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
      // Rows of (2G) g (rows 1 and 2 share g0 + g6), each times (2G)ᵀ.
      const e0 = i16x8.add(g0, g6), e1 = i16x8.add(g1, g7), e2 = i16x8.add(g2, g8);
      transformRow(to, xiStride, 0, i16x8.shl(g0, 1), i16x8.shl(g1, 1), i16x8.shl(g2, 1));
      transformRow(to, xiStride, 1, i16x8.add(e0, g3), i16x8.add(e1, g4), i16x8.add(e2, g5));
      transformRow(to, xiStride, 2, i16x8.sub(e0, g3), i16x8.sub(e1, g4), i16x8.sub(e2, g5));
      transformRow(to, xiStride, 3, i16x8.shl(g6, 1), i16x8.shl(g7, 1), i16x8.shl(g8, 1));
    }
  }
}

/** Columns of one row of (2G) g times (2G)ᵀ: the four U' values of row `row`. */
// @ts-ignore: decorator
@inline function transformRow(dst: usize, xiStride: usize, row: i32, a: v128, b: v128, c: v128): void {
  const at = dst + <usize>(row * 4) * xiStride;
  const ac = i16x8.add(a, c);
  v128.store(at, i16x8.shl(a, 1));
  v128.store(at + xiStride, i16x8.add(ac, b));
  v128.store(at + 2 * xiStride, i16x8.sub(ac, b));
  v128.store(at + 3 * xiStride, i16x8.shl(c, 1));
}
