import { roundClamp4, narrow16 } from './requantize';
import { sliceStart, sliceEnd } from './parts';

// Residual add of two uint8 tensors with their own scales, into a third (+ optional ReLU via lo).
// Works on 16 elements per step and rounds the count up: the arena's slack absorbs the overrun.

// @ts-ignore: decorator
@inline function scaled4(x: v128, zero: v128, multiplier: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(x, zero)), multiplier);
}

export function add(
  a: usize, za: i32, multA: f32, b: usize, zb: i32, multB: f32,
  output: usize, count: i32, zo: i32, lo: i32, part: i32, parts: i32, thread: i32,
): void {
  const zA = i32x4.splat(za), zB = i32x4.splat(zb);
  const mA = f32x4.splat(multA), mB = f32x4.splat(multB);
  const vectors = (count + 15) >> 4;
  for (let i = sliceStart(vectors, part, parts) << 4, end = sliceEnd(vectors, part, parts) << 4; i < end; i += 16) {
    const va = v128.load(a + <usize>i), vb = v128.load(b + <usize>i);
    const aLo = i16x8.extend_low_i8x16_u(va), aHi = i16x8.extend_high_i8x16_u(va);
    const bLo = i16x8.extend_low_i8x16_u(vb), bHi = i16x8.extend_high_i8x16_u(vb);
    v128.store(output + <usize>i, narrow16(
      roundClamp4(f32x4.add(scaled4(i32x4.extend_low_i16x8_u(aLo), zA, mA), scaled4(i32x4.extend_low_i16x8_u(bLo), zB, mB)), zo, lo),
      roundClamp4(f32x4.add(scaled4(i32x4.extend_high_i16x8_u(aLo), zA, mA), scaled4(i32x4.extend_high_i16x8_u(bLo), zB, mB)), zo, lo),
      roundClamp4(f32x4.add(scaled4(i32x4.extend_low_i16x8_u(aHi), zA, mA), scaled4(i32x4.extend_low_i16x8_u(bHi), zB, mB)), zo, lo),
      roundClamp4(f32x4.add(scaled4(i32x4.extend_high_i16x8_u(aHi), zA, mA), scaled4(i32x4.extend_high_i16x8_u(bHi), zB, mB)), zo, lo),
    ));
  }
}
