import { requantize4, narrow4 } from './requantize';
import { loadActivations, loadPrepared, mac, foldAccumulators, prepareWeights, PREPARED_GROUP_BYTES } from './mac';
import { sliceStart, sliceEnd } from './parts';

// Direct int8 convolution, NHWC, any kernel size, stride and padding.
//
// Micro-kernel: 2 output pixels x 4 output channels. For each filter tap it reads 8 input channels
// per pixel (uint8 -> i16) and 8 weights per channel (int8 -> i16) and multiplies them with
// i32x4.dot_i16x8_s, so each of the 8 accumulators holds 4 partial sums that sum4 folds at the
// end. The weight payload is pre-packed in exactly this order (docs/FORMAT.md), with the input
// zero point folded into the bias; each block's weights are prepared once (mac.ts) into the
// calling thread's scratch (`thread · scratchStride` bytes past `scratch`). Taps that fall in the padding read `padRow`,
// which the runtime fills with zx. Threads split the output-channel blocks.

// @ts-ignore: decorator
@inline export function roundUp(x: i32, m: i32): i32 {
  return (x + m - 1) / m * m;
}

/** Byte offset of pixel (y, x) in an NHWC tensor, or of the zero-point row when outside. */
// @ts-ignore: decorator
@inline export function tapAddress(input: usize, inH: i32, inW: i32, inC: i32, y: i32, x: i32, padRow: usize): usize {
  return (<u32>y < <u32>inH && <u32>x < <u32>inW) ? input + <usize>((y * inW + x) * inC) : padRow;
}

export function conv(
  input: usize, inH: i32, inW: i32, inC: i32, zx: i32,
  params: usize, outC: i32, kh: i32, kw: i32, stride: i32, pad: i32,
  output: usize, outH: i32, outW: i32, zo: i32, lo: i32,
  padRow: usize, scratch: usize, scratchStride: i32, part: i32, parts: i32, thread: i32,
): void {
  const prepared = scratch + <usize>(thread * scratchStride);
  const cp = roundUp(inC, 8);
  const blocks = roundUp(outC, 4) / 4;
  const bias = params;
  const multiplier = params + <usize>(blocks * 16);
  const weights = params + <usize>(blocks * 32);
  const blockBytes = <usize>(kh * kw * cp * 4);
  const pixels = outH * outW;
  for (let ob = sliceStart(blocks, part, parts), end = sliceEnd(blocks, part, parts); ob < end; ob++) {
    const channels = min(4, outC - ob * 4);
    const biasV = v128.load(bias + <usize>(ob * 16));
    const multV = v128.load(multiplier + <usize>(ob * 16));
    const wBlock = prepareWeights(weights + <usize>ob * blockBytes, blockBytes, prepared);
    const out = output + <usize>(ob * 4);
    // (oy0, ox0) is pixel p, (oy1, ox1) pixel q, stepped without dividing.
    let oy0 = 0, ox0 = 0;
    for (let p = 0; p < pixels; p += 2) {
      const q = p + 1 < pixels ? p + 1 : p;
      let oy1 = oy0, ox1 = ox0 + (q - p);
      if (ox1 == outW) { oy1++; ox1 = 0; }
      const iy0 = oy0 * stride - pad, ix0 = ox0 * stride - pad;
      const iy1 = oy1 * stride - pad, ix1 = ox1 * stride - pad;
      let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
      let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
      let w = wBlock;
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          const pa = tapAddress(input, inH, inW, inC, iy0 + ky, ix0 + kx, padRow);
          const pb = tapAddress(input, inH, inW, inC, iy1 + ky, ix1 + kx, padRow);
          for (let c = 0; c < cp; c += 8) {
            const xa = loadActivations(pa + <usize>c);
            const xb = loadActivations(pb + <usize>c);
            const w0 = loadPrepared(w, 0);
            const w1 = loadPrepared(w, 1);
            const w2 = loadPrepared(w, 2);
            const w3 = loadPrepared(w, 3);
            a0 = mac(a0, xa, w0);
            a1 = mac(a1, xa, w1);
            a2 = mac(a2, xa, w2);
            a3 = mac(a3, xa, w3);
            b0 = mac(b0, xb, w0);
            b1 = mac(b1, xb, w1);
            b2 = mac(b2, xb, w2);
            b3 = mac(b3, xb, w3);
            w += PREPARED_GROUP_BYTES;
          }
        }
      }
      const ra = narrow4(requantize4(i32x4.add(foldAccumulators(a0, a1, a2, a3), biasV), multV, zo, lo));
      storeChannels(out + <usize>(p * outC), ra, channels);
      if (q != p) {
        const rb = narrow4(requantize4(i32x4.add(foldAccumulators(b0, b1, b2, b3), biasV), multV, zo, lo));
        storeChannels(out + <usize>(q * outC), rb, channels);
      }
      oy0 = oy1; ox0 = ox1 + 1;
      if (ox0 == outW) { oy0++; ox0 = 0; }
    }
  }
}

/** Stores the low `n` (1..4) bytes of `v`; a full block is one 32-bit store. */
// @ts-ignore: decorator
@inline export function storeChannels(ptr: usize, v: v128, n: i32): void {
  if (n == 4) {
    v128.store32_lane(ptr, v, 0);
  } else {
    const word = i32x4.extract_lane(v, 0);
    for (let j = 0; j < n; j++) store<u8>(ptr + <usize>j, <u8>(word >>> (8 * j)));
  }
}
