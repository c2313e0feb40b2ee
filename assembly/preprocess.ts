import { narrow4, narrow16 } from './requantize';

// Input preprocessing: PIL's bilinear resampler (ImagingResample, 8 bits a sample), one row at a
// time, then the input lookup table. The runtime (src/image/resample.ts) computes the filter
// tables in double, exactly as PIL does, and feeds source rows; these loops only accumulate the
// fixed-point products, so the bytes are PIL's. Pixels are RGB-interleaved; every buffer has 16
// bytes of slack, which the vector loads and stores may touch.

/** Fraction bits of the fixed-point weights (PIL's PRECISION_BITS = 32 - 8 - 2). */
// @ts-ignore: decorator
@inline const PRECISION_BITS: i32 = 22;
// @ts-ignore: decorator
@inline const HALF: i32 = 1 << (PRECISION_BITS - 1);

/**
 * The horizontal pass over one source row: output pixel x reads counts[x] source pixels from
 * firsts[x] (pixel indices into `src`) with weights[x * stride + t], and gets
 * clip8((HALF + Σ src·w) >> PRECISION_BITS) in each of R, G, B.
 */
export function resampleRow(src: usize, firsts: usize, counts: usize, weights: usize, stride: i32, width: i32, out: usize): void {
  for (let x = 0; x < width; x++) {
    const n = load<i32>(counts + (<usize>x << 2));
    let from = src + <usize>(load<i32>(firsts + (<usize>x << 2)) * 3);
    let w = weights + (<usize>(x * stride) << 2);
    let acc = i32x4.splat(HALF);
    for (let t = 0; t < n; t++) {
      // R, G, B and the next pixel's R, which lands in a lane that is thrown away.
      const pixel = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(from)));
      acc = i32x4.add(acc, i32x4.mul(pixel, i32x4.splat(load<i32>(w))));
      from += 3;
      w += 4;
    }
    // Four bytes stored, three kept: the next pixel overwrites the fourth.
    v128.store32_lane(out + <usize>(x * 3), narrow4(i32x4.shr_s(acc, PRECISION_BITS)), 0);
  }
}

/**
 * The vertical pass for one output row, then the lookup: blends `count` horizontally resampled
 * rows, starting at source row `firstRow`, from a ring of `ringRows` rows `rowStride` bytes apart
 * (source row r is in slot r % ringRows), into `pixels` RGB pixels at `blended`; then writes
 * table[c * 256 + value] for each network channel c to `out`, reading channel 2 - c when `bgr`.
 */
export function blendRow(
  ring: usize, ringRows: i32, rowStride: i32, firstRow: i32, count: i32, weights: usize,
  pixels: i32, blended: usize, table: usize, bgr: i32, out: usize,
): void {
  const samples = pixels * 3;
  for (let j = 0; j < samples; j += 16) {
    let a = i32x4.splat(HALF), b = a, c = a, d = a;
    for (let t = 0; t < count; t++) {
      const row = ring + <usize>(((firstRow + t) % ringRows) * rowStride + j);
      const w = i32x4.splat(load<i32>(weights + (<usize>t << 2)));
      const v = v128.load(row);
      const lo = i16x8.extend_low_i8x16_u(v), hi = i16x8.extend_high_i8x16_u(v);
      a = i32x4.add(a, i32x4.mul(i32x4.extend_low_i16x8_u(lo), w));
      b = i32x4.add(b, i32x4.mul(i32x4.extend_high_i16x8_u(lo), w));
      c = i32x4.add(c, i32x4.mul(i32x4.extend_low_i16x8_u(hi), w));
      d = i32x4.add(d, i32x4.mul(i32x4.extend_high_i16x8_u(hi), w));
    }
    v128.store(blended + <usize>j, narrow16(
      i32x4.shr_s(a, PRECISION_BITS), i32x4.shr_s(b, PRECISION_BITS), i32x4.shr_s(c, PRECISION_BITS), i32x4.shr_s(d, PRECISION_BITS),
    ));
  }
  lookUp(blended, pixels, table, bgr, out);
}

/** out[p * 3 + c] = table[c * 256 + in[p * 3 + (bgr ? 2 - c : c)]]. */
function lookUp(pixelsIn: usize, pixels: i32, table: usize, bgr: i32, out: usize): void {
  const first: usize = bgr ? 2 : 0;
  const last: usize = 2 - first;
  for (let p = 0; p < pixels; p++) {
    const from = pixelsIn + <usize>(p * 3);
    const to = out + <usize>(p * 3);
    store<u8>(to, load<u8>(table + (<usize>load<u8>(from + first))));
    store<u8>(to + 1, load<u8>(table + 256 + (<usize>load<u8>(from + 1))));
    store<u8>(to + 2, load<u8>(table + 512 + (<usize>load<u8>(from + last))));
  }
}
