import { sum4 } from './requantize';

// The multiply-accumulate step of the direct conv and fc kernels: 8 input channels of one pixel
// times one 32-byte weight group (4 output channels x 8 input channels, docs/FORMAT.md) into four
// accumulators, one per output channel. Which instructions do it is fixed when the module is
// compiled (ASC_FEATURE_RELAXED_SIMD), over the same packed weights:
//
// baseline   activations uint8 -> i16, weights int8 -> i16, i32x4.dot_i16x8_s: lane j holds
//            channels 2j, 2j+1.
// relaxed    i32x4.relaxed_dot_i8x16_i7x16_add_s multiplies int8 by 0..127 in groups of 4 bytes
//            (arm64: one sdot). An activation x is split into lo = x & 127 and hi = x >> 7, both in
//            0..127, so the result is exact on every lowering (x86's pmaddubsw saturates pairs at
//            16 bits: 2·128·127 < 32767). The activation vector is [lo of 8 channels, hi of 8
//            channels] and the weight vector the 8 weights twice, so lanes 0, 1 hold lo sums and
//            lanes 2, 3 hi sums, which the fold weighs by 128.

/** The 8 activations at `at`, as `mac` takes them. */
// @ts-ignore: decorator
@inline export function loadActivations(at: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    // Both halves hold x; (x & [127, 128]) then min_u with [127, 1] gives [x & 127, x >> 7].
    const x = v128.load64_splat(at);
    return i8x16.min_u(v128.and(x, i64x2(0x7f7f7f7f7f7f7f7f, 0x8080808080808080)), i64x2(0x7f7f7f7f7f7f7f7f, 0x0101010101010101));
  }
  return v128.load8x8_u(at);
}

/** The 8 weights of output channel `k` (a constant, 0..3) of the group at `w`. */
// @ts-ignore: decorator
@inline export function loadWeights(w: usize, k: i32): v128 {
  // Offsets must be immediates: a constant k folds each chain to one load.
  if (ASC_FEATURE_RELAXED_SIMD) {
    return k == 0 ? v128.load64_splat(w) : k == 1 ? v128.load64_splat(w, 8) : k == 2 ? v128.load64_splat(w, 16) : v128.load64_splat(w, 24);
  }
  return k == 0 ? v128.load8x8_s(w) : k == 1 ? v128.load8x8_s(w, 8) : k == 2 ? v128.load8x8_s(w, 16) : v128.load8x8_s(w, 24);
}

/**
 * The direct conv reads a block's weights again for every pair of output pixels, so the baseline
 * build widens them to i16 once per block and then loads them whole: one instruction fewer per
 * load, 7-14% faster on every direct conv (ResNet-18's stem: 3.8 -> 3.3 ms). The relaxed build
 * reads the int8 bytes as they are.
 */
export const PREPARED_GROUP_BYTES: usize = ASC_FEATURE_RELAXED_SIMD ? 32 : 64;

/** A block of `bytes` packed int8 weights as loadPrepared reads them: in the baseline build, widened into `scratch`. */
// @ts-ignore: decorator
@inline export function prepareWeights(block: usize, bytes: usize, scratch: usize): usize {
  if (ASC_FEATURE_RELAXED_SIMD) return block;
  for (let i: usize = 0; i < bytes; i += 8) v128.store(scratch + 2 * i, v128.load8x8_s(block + i));
  return scratch;
}

/** The 8 weights of output channel `k` (a constant, 0..3) of the prepared group at `w`. */
// @ts-ignore: decorator
@inline export function loadPrepared(w: usize, k: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return loadWeights(w, k);
  return k == 0 ? v128.load(w) : k == 1 ? v128.load(w, 16) : k == 2 ? v128.load(w, 32) : v128.load(w, 48);
}

/** `acc` plus activations `x` times weights `w` (from loadActivations and loadWeights or loadPrepared). */
// @ts-ignore: decorator
@inline export function mac(acc: v128, x: v128, w: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, x, acc);
  return i32x4.add(acc, i32x4.dot_i16x8_s(x, w));
}

/** The four accumulators -> one int32 per output channel. */
// @ts-ignore: decorator
@inline export function foldAccumulators(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const hiWeight = i32x4(1, 1, 128, 128);
    return sum4(i32x4.mul(a0, hiWeight), i32x4.mul(a1, hiWeight), i32x4.mul(a2, hiWeight), i32x4.mul(a3, hiWeight));
  }
  return sum4(a0, a1, a2, a3);
}
