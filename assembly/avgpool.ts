import { narrow16 } from './requantize';
import { sliceStart, sliceEnd } from './parts';
import { storePartial } from './partial';

// Average pool over uint8 NHWC tensors (ResNet-D's 2x2 stride-2 shortcut pool), 16 channels per
// step. The output keeps the input's scale and zero point, so the mean of the raw uint8 values is
// the answer: q = floor((2·Σ + n) / (2n)) over the n in-bounds taps (padding and the ceil-mode
// overhang are not counted). Σ ≤ 255·15² fits u16 lanes; the quotient is computed in f32, which is
// exact here: 2Σ + n < 2^17 and 2n ≤ 450, and a correctly rounded quotient below 256 cannot cross
// an integer (its error is below 2^-16, its distance to one at least 1/450), so the floor is exact.

// @ts-ignore: decorator
@inline function divide4(sums: v128, numerator: v128, denominator: v128): v128 {
  const q = f32x4.div(f32x4.convert_i32x4_u(i32x4.add(i32x4.shl(sums, 1), numerator)), denominator);
  return i32x4.trunc_sat_f32x4_u(q);
}

export function avgpool(
  input: usize, inH: i32, inW: i32, channels: i32,
  output: usize, outH: i32, outW: i32, k: i32, stride: i32, pad: i32, part: i32, parts: i32,
): void {
  const rowBytes = inW * channels;
  const first = sliceStart(outH, part, parts);
  let out = output + <usize>(first * outW * channels);
  for (let oy = first, end = sliceEnd(outH, part, parts); oy < end; oy++) {
    const y0 = max(oy * stride - pad, 0), y1 = min(oy * stride - pad + k, inH);
    for (let ox = 0; ox < outW; ox++) {
      const x0 = max(ox * stride - pad, 0), x1 = min(ox * stride - pad + k, inW);
      const n = (y1 - y0) * (x1 - x0);
      const numerator = i32x4.splat(n), denominator = f32x4.splat(<f32>(n << 1));
      for (let c = 0; c < channels; c += 16) {
        let lo = i16x8.splat(0), hi = i16x8.splat(0);
        for (let y = y0; y < y1; y++) {
          const row = input + <usize>(y * rowBytes + c);
          for (let x = x0; x < x1; x++) {
            const v = v128.load(row + <usize>(x * channels));
            lo = i16x8.add(lo, i16x8.extend_low_i8x16_u(v));
            hi = i16x8.add(hi, i16x8.extend_high_i8x16_u(v));
          }
        }
        storePartial(out + <usize>c, narrow16(
          divide4(i32x4.extend_low_i16x8_u(lo), numerator, denominator),
          divide4(i32x4.extend_high_i16x8_u(lo), numerator, denominator),
          divide4(i32x4.extend_low_i16x8_u(hi), numerator, denominator),
          divide4(i32x4.extend_high_i16x8_u(hi), numerator, denominator),
        ), channels - c);
      }
      out += <usize>channels;
    }
  }
}
