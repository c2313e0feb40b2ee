// Requantization shared by every kernel that writes uint8 (docs/ARCHITECTURE.md, "Requantization").
// Rounding uses the f32 "magic bias": adding 1.5·2^23 leaves round-half-even(y) in the low mantissa
// bits for |y| < 2^22; no conversion can trap.

// @ts-ignore: decorator
@inline export const MAGIC_BIAS: f32 = 12582912.0;
// @ts-ignore: decorator
@inline export const MAGIC_BITS: i32 = 0x4b400000;

/** Four int32 lanes → four requantized values, lo or more (as i32 lanes; narrowing clamps at 255). */
// @ts-ignore: decorator
@inline export function requantize4(acc: v128, multiplier: v128, zo: i32, lo: i32): v128 {
  let y = f32x4.mul(f32x4.convert_i32x4_s(acc), multiplier);
  return roundClamp4(y, zo, lo);
}

/**
 * Rounds f32 lanes half to even, adds zo and clamps to [lo, 255]: the lower bound here, the upper
 * bound in narrow4/narrow16's saturation, which every caller ends with. Float bits grow with the
 * value, so a lane too large for the magic bias (≥ 2^22) still comes out above 255 and saturates.
 * The bound is pmax (`a < b ? b : a`, one maxps on x86, where max's NaN and signed-zero rules take
 * seven instructions: it was half of a 1x1 conv's time on 64 channels); with the bound first a NaN
 * becomes the bound, and a zero's sign vanishes in the magic-bias add.
 */
// @ts-ignore: decorator
@inline export function roundClamp4(y: v128, zo: i32, lo: i32): v128 {
  y = f32x4.pmax(f32x4.splat(<f32>(lo - zo)), y);
  return i32x4.sub(f32x4.add(y, f32x4.splat(MAGIC_BIAS)), i32x4.splat(MAGIC_BITS - zo));
}

/** Sixteen i32 lanes (four vectors) → sixteen bytes, saturating to [0, 255]. */
// @ts-ignore: decorator
@inline export function narrow16(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

/** Four i32 lanes → bytes in the low 32 bits, saturating to [0, 255]. */
// @ts-ignore: decorator
@inline export function narrow4(a: v128): v128 {
  const h = i16x8.narrow_i32x4_s(a, a);
  return i8x16.narrow_i16x8_u(h, h);
}

/**
 * Horizontal sums of four accumulators (one per output channel) → [Σa, Σb, Σc, Σd].
 * The c8 micro-kernels keep four partial sums per output channel; this folds them once per tile.
 */
// @ts-ignore: decorator
@inline export function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}
