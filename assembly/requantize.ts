// Requantization shared by every kernel that writes uint8 (docs/ARCHITECTURE.md, "Requantization").
// Rounding uses the f32 "magic bias": adding 1.5·2^23 leaves round-half-even(y) in the low mantissa
// bits for |y| < 2^22, and clamping first keeps y in [-255, 255], so no conversion can trap.

// @ts-ignore: decorator
@inline export const MAGIC_BIAS: f32 = 12582912.0;
// @ts-ignore: decorator
@inline export const MAGIC_BITS: i32 = 0x4b400000;

/** Four int32 lanes → four requantized values in [lo, 255] (as i32 lanes). */
// @ts-ignore: decorator
@inline export function requantize4(acc: v128, multiplier: v128, zo: i32, lo: i32): v128 {
  let y = f32x4.mul(f32x4.convert_i32x4_s(acc), multiplier);
  return roundClamp4(y, zo, lo);
}

/**
 * Clamps f32 lanes to [lo - zo, 255 - zo], rounds half to even, adds zo. The clamp is pmax/pmin
 * (`b < a ? b : a`): one maxps/minps on x86, where max/min's NaN and signed-zero rules take seven
 * instructions each (half of a 1x1 conv's time on 64 channels). With the bound first a NaN
 * becomes the bound; a zero's sign vanishes in the magic-bias add.
 */
// @ts-ignore: decorator
@inline export function roundClamp4(y: v128, zo: i32, lo: i32): v128 {
  y = f32x4.pmax(f32x4.splat(<f32>(lo - zo)), y);
  y = f32x4.pmin(f32x4.splat(<f32>(<i32>255 - zo)), y);
  return i32x4.sub(f32x4.add(y, f32x4.splat(MAGIC_BIAS)), i32x4.splat(MAGIC_BITS - zo));
}

/** Sixteen i32 lanes in [0, 255] (four vectors) → sixteen bytes. */
// @ts-ignore: decorator
@inline export function narrow16(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

/** Four i32 lanes in [0, 255] → bytes in the low 32 bits. */
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
