import { roundClamp4, narrow16 } from './requantize';
import { sliceStart, sliceEnd } from './parts';
import { storePartial } from './partial';

// Per-channel affine map of a uint8 tensor (a BatchNorm, maybe + ReLU, that no conv precedes: the
// pre-activation of ResNet V2): y = f32(f32(f32(q − zx)·M[c]) + B[c]), rounded and clamped as every
// requantization is. `params` holds M then B as f32[Cp] each, Cp = roundUp(channels, 16), padding
// zero (docs/FORMAT.md). 16 channels per step; pixels are split over the threads.

// @ts-ignore: decorator
@inline function affine4(q: v128, zero: v128, multiplier: usize, offset: usize, zo: i32, lo: i32): v128 {
  const y = f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(q, zero)), v128.load(multiplier));
  return roundClamp4(f32x4.add(y, v128.load(offset)), zo, lo);
}

export function affine(
  input: usize, pixels: i32, channels: i32, zx: i32, params: usize,
  output: usize, zo: i32, lo: i32, part: i32, parts: i32, thread: i32,
): void {
  const zero = i32x4.splat(zx);
  const offsets = params + <usize>(((channels + 15) & ~15) << 2);
  const first = sliceStart(pixels, part, parts);
  let src = input + <usize>(first * channels), dst = output + <usize>(first * channels);
  for (let p = first, end = sliceEnd(pixels, part, parts); p < end; p++) {
    for (let c = 0; c < channels; c += 16) {
      const v = v128.load(src + <usize>c);
      const m = params + <usize>(c << 2), b = offsets + <usize>(c << 2);
      const vLo = i16x8.extend_low_i8x16_u(v), vHi = i16x8.extend_high_i8x16_u(v);
      storePartial(dst + <usize>c, narrow16(
        affine4(i32x4.extend_low_i16x8_u(vLo), zero, m, b, zo, lo),
        affine4(i32x4.extend_high_i16x8_u(vLo), zero, m + 16, b + 16, zo, lo),
        affine4(i32x4.extend_low_i16x8_u(vHi), zero, m + 32, b + 32, zo, lo),
        affine4(i32x4.extend_high_i16x8_u(vHi), zero, m + 48, b + 48, zo, lo),
      ), channels - c);
    }
    src += <usize>channels;
    dst += <usize>channels;
  }
}
