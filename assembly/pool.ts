import { requantize4, narrow16 } from './requantize';
import { sliceStart, sliceEnd } from './parts';

// Pooling over uint8 NHWC tensors, 16 channels per step. Kernels may read and write up to 15
// bytes past a tensor's last channel: the arena leaves that slack after every tensor.

/** Max pool; taps in the padding are skipped, so padding never wins. */
export function maxpool(
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
      for (let c = 0; c < channels; c += 16) {
        let m = i8x16.splat(0);
        for (let y = y0; y < y1; y++) {
          const row = input + <usize>(y * rowBytes + c);
          for (let x = x0; x < x1; x++) m = i8x16.max_u(m, v128.load(row + <usize>(x * channels)));
        }
        v128.store(out + <usize>c, m);
      }
      out += <usize>channels;
    }
  }
}

/** Global average pool: per channel Σ(x − zx) over h·w, requantized with `multiplier`. */
export function gap(
  input: usize, pixels: i32, channels: i32, zx: i32,
  output: usize, multiplier: f32, zo: i32, part: i32, parts: i32,
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
