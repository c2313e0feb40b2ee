import { requantize4, narrow16 } from './requantize';
import { sliceStart, sliceEnd } from './parts';
import { storePartial } from './partial';

// Pooling over uint8 NHWC tensors, 16 channels per step. Kernels may read up to 15 bytes past a
// tensor's last channel (gap also writes them): the arena leaves that slack after every tensor.
// The window kernels write only each pixel's own channels: threads split them by rows, and a
// pixel's tail would land on the next row's first pixel, another thread's.

/** Max pool; taps in the padding are skipped, so padding never wins. */
export function maxpool(
  input: usize, inH: i32, inW: i32, channels: i32,
  output: usize, outH: i32, outW: i32, k: i32, stride: i32, pad: i32, part: i32, parts: i32, thread: i32,
): void {
  windows(input, inH, inW, channels, output, outH, outW, k, stride, pad, part, parts, false);
}

/**
 * Average pool (ResNet-D's shortcut). The output keeps the input's scale and zero point, so the
 * mean of the raw uint8 values is the answer: q = floor((2·Σ + n) / (2n)) over the n in-bounds taps
 * (padding and the ceil-mode overhang are not counted). Σ ≤ 255·15² fits u16 lanes; the quotient
 * is computed in f32, which is exact here: 2Σ + n < 2^17 and 2n ≤ 450, and a correctly rounded
 * quotient below 256 cannot cross an integer (its error is below 2^-16, its distance to one at
 * least 1/450), so the floor is exact.
 */
export function avgpool(
  input: usize, inH: i32, inW: i32, channels: i32,
  output: usize, outH: i32, outW: i32, k: i32, stride: i32, pad: i32, part: i32, parts: i32, thread: i32,
): void {
  windows(input, inH, inW, channels, output, outH, outW, k, stride, pad, part, parts, true);
}

/** Every output pixel of this part's rows, over the in-bounds part of its window; `average` is a constant after inlining. */
// @ts-ignore: decorator
@inline function windows(
  input: usize, inH: i32, inW: i32, channels: i32,
  output: usize, outH: i32, outW: i32, k: i32, stride: i32, pad: i32, part: i32, parts: i32, average: bool,
): void {
  const rowBytes = inW * channels;
  const first = sliceStart(outH, part, parts);
  let out = output + <usize>(first * outW * channels);
  for (let oy = first, end = sliceEnd(outH, part, parts); oy < end; oy++) {
    const y0 = max(oy * stride - pad, 0), y1 = min(oy * stride - pad + k, inH);
    for (let ox = 0; ox < outW; ox++) {
      const x0 = max(ox * stride - pad, 0), x1 = min(ox * stride - pad + k, inW);
      const window = input + <usize>(y0 * rowBytes + x0 * channels);
      const rows = y1 - y0, cols = x1 - x0;
      for (let c = 0; c < channels; c += 16) {
        const at = window + <usize>c;
        storePartial(out + <usize>c, average ? mean16(at, rows, cols, rowBytes, channels) : max16(at, rows, cols, rowBytes, channels), channels - c);
      }
      out += <usize>channels;
    }
  }
}

// @ts-ignore: decorator
@inline function max16(at: usize, rows: i32, cols: i32, rowBytes: i32, channels: i32): v128 {
  let m = i8x16.splat(0);
  for (let y = 0; y < rows; y++) {
    const row = at + <usize>(y * rowBytes);
    for (let x = 0; x < cols; x++) m = i8x16.max_u(m, v128.load(row + <usize>(x * channels)));
  }
  return m;
}

// @ts-ignore: decorator
@inline function mean16(at: usize, rows: i32, cols: i32, rowBytes: i32, channels: i32): v128 {
  let lo = i16x8.splat(0), hi = i16x8.splat(0);
  for (let y = 0; y < rows; y++) {
    const row = at + <usize>(y * rowBytes);
    for (let x = 0; x < cols; x++) {
      const v = v128.load(row + <usize>(x * channels));
      lo = i16x8.add(lo, i16x8.extend_low_i8x16_u(v));
      hi = i16x8.add(hi, i16x8.extend_high_i8x16_u(v));
    }
  }
  const n = rows * cols;
  const numerator = i32x4.splat(n), denominator = f32x4.splat(<f32>(n << 1));
  return narrow16(
    divide4(i32x4.extend_low_i16x8_u(lo), numerator, denominator),
    divide4(i32x4.extend_high_i16x8_u(lo), numerator, denominator),
    divide4(i32x4.extend_low_i16x8_u(hi), numerator, denominator),
    divide4(i32x4.extend_high_i16x8_u(hi), numerator, denominator),
  );
}

/**
 * floor((2·sum + n) / 2n) per lane: `numerator` holds n, `denominator` 2n. Every value is
 * non-negative and far below 2^31, so the signed conversions (a few instructions fewer on x86 than
 * the unsigned ones) give the same lanes.
 */
// @ts-ignore: decorator
@inline function divide4(sums: v128, numerator: v128, denominator: v128): v128 {
  const q = f32x4.div(f32x4.convert_i32x4_s(i32x4.add(i32x4.shl(sums, 1), numerator)), denominator);
  return i32x4.trunc_sat_f32x4_s(q);
}

/** Global average pool: per channel Σ(x − zx) over h·w, requantized with `multiplier`. */
export function gap(
  input: usize, pixels: i32, channels: i32, zx: i32,
  output: usize, multiplier: f32, zo: i32, part: i32, parts: i32, thread: i32,
): void {
  const offset = i32x4.splat(pixels * zx);
  const mult = f32x4.splat(multiplier);
  const groups = (channels + 15) >> 4;
  for (let c = sliceStart(groups, part, parts) << 4, end = sliceEnd(groups, part, parts) << 4; c < end; c += 16) {
    let s0 = i32x4.splat(0), s1 = i32x4.splat(0), s2 = i32x4.splat(0), s3 = i32x4.splat(0);
    let ptr = input + <usize>c;
    for (let p = 0; p < pixels; p++) {
      const v = v128.load(ptr);
      const lo = i16x8.extend_low_i8x16_u(v), hi = i16x8.extend_high_i8x16_u(v);
      s0 = i32x4.add(s0, i32x4.extend_low_i16x8_u(lo));
      s1 = i32x4.add(s1, i32x4.extend_high_i16x8_u(lo));
      s2 = i32x4.add(s2, i32x4.extend_low_i16x8_u(hi));
      s3 = i32x4.add(s3, i32x4.extend_high_i16x8_u(hi));
      ptr += <usize>channels;
    }
    v128.store(output + <usize>c, narrow16(
      requantize4(i32x4.sub(s0, offset), mult, zo, 0),
      requantize4(i32x4.sub(s1, offset), mult, zo, 0),
      requantize4(i32x4.sub(s2, offset), mult, zo, 0),
      requantize4(i32x4.sub(s3, offset), mult, zo, 0),
    ));
  }
}
