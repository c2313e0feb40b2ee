import { requantize4 } from './requantize';
import { loadActivations, loadPrepared, mac, foldAccumulators, prepareWeights, PREPARED_GROUP_BYTES } from './mac';
import { storeChannels, tapAddress } from './conv';

// gemm's layout in the relaxed build: conv's 2 pixels x 4 output channels over 8 input channels per
// step (mac.ts), each accumulator 4 partial sums of one channel, folded once per tile. The relaxed
// dot sums 4 bytes per lane, so the int8 weights are read as packed (docs/FORMAT.md) and each
// pixel's 8 channels are gathered as loadActivations splits them.

/** Bytes of one pixel's gathered activations: 16 per 8 input channels. */
// @ts-ignore: decorator
@inline function preparedRowBytes(cp: i32): usize {
  return <usize>(cp * 2);
}

/** `count` packed blocks from `block`, as loadPrepared reads them. */
// @ts-ignore: decorator
@inline export function prepareGroupC8(block: usize, count: i32, cp: i32, scratch: usize): usize {
  return prepareWeights(block, <usize>(count * cp * 4), scratch);
}

/** `n` input pixels, each as loadActivations reads its cp channels, into `chunk` (walked as gatherQuads walks them). */
export function gatherPixels(row: usize, ox: i32, outW: i32, pixelStep: usize, rowStep: usize, cp: i32, n: i32, chunk: usize): void {
  for (let i = 0; i < n; i++) {
    packPixel(row + <usize>ox * pixelStep, cp, chunk + <usize>i * preparedRowBytes(cp));
    if (++ox == outW) { ox = 0; row += rowStep; }
  }
}

/**
 * `n` output pixels from (oy, ox) on, each its kh x kw taps of cp channels (a tap in the padding
 * reads `padRow`), into `chunk` as gatherPixels lays out pixels of K = kh·kw·cp channels.
 */
export function gatherTapPixels(
  input: usize, inH: i32, inW: i32, inC: i32, kh: i32, kw: i32, stride: i32, pad: i32, padRow: usize,
  oy: i32, ox: i32, outW: i32, cp: i32, n: i32, chunk: usize,
): void {
  let to = chunk;
  for (let i = 0; i < n; i++) {
    const y0 = oy * stride - pad, x0 = ox * stride - pad;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        packPixel(tapAddress(input, inH, inW, inC, y0 + ky, x0 + kx, padRow), cp, to);
        to += preparedRowBytes(cp);
      }
    }
    if (++ox == outW) { ox = 0; oy++; }
  }
}

/** The cp channels at `from` as loadActivations reads them, at `to`. */
// @ts-ignore: decorator
@inline function packPixel(from: usize, cp: i32, to: usize): void {
  for (let c = 0; c < cp; c += 8) v128.store(to + <usize>(c * 2), loadActivations(from + <usize>c));
}

/** The `n` gathered pixels at `chunk` times the prepared blocks [g0, g1) at `group`, into output rows from `out`. */
export function tilesC8(
  chunk: usize, n: i32, cp: i32, group: usize,
  params: usize, blocks: i32, g0: i32, g1: i32, outC: i32, out: usize, zo: i32, lo: i32,
): void {
  const preparedBlockBytes = <usize>(cp * 4) / 32 * PREPARED_GROUP_BYTES;
  for (let ob = g0; ob < g1; ob++) {
    tiles(chunk, n, cp, group + <usize>(ob - g0) * preparedBlockBytes, params, blocks, ob, outC, out, zo, lo);
  }
}

/** `n` prepared pixels at `chunk` times output-channel block `ob` (prepared at `weights`), two pixels at a time, into output rows from `out`. */
// @ts-ignore: decorator
@inline function tiles(
  chunk: usize, n: i32, cp: i32, weights: usize,
  params: usize, blocks: i32, ob: i32, outC: i32, out: usize, zo: i32, lo: i32,
): void {
  const channels = min(4, outC - ob * 4);
  const biasV = v128.load(params + <usize>(ob * 16));
  const multV = v128.load(params + <usize>((blocks + ob) * 16));
  const rowBytes = preparedRowBytes(cp);
  const at = out + <usize>(ob * 4);
  for (let i = 0; i < n; i += 2) {
    const j = i + 1 < n ? i + 1 : i;
    const pa = chunk + <usize>i * rowBytes;
    const pb = chunk + <usize>j * rowBytes;
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    let b0 = i32x4.splat(0), b1 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
    let w = weights;
    for (let k: usize = 0; k < rowBytes; k += 16) {
      const xa = v128.load(pa + k);
      const xb = v128.load(pb + k);
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
    const ra = requantize4(i32x4.add(foldAccumulators(a0, a1, a2, a3), biasV), multV, zo, lo);
    const rb = requantize4(i32x4.add(foldAccumulators(b0, b1, b2, b3), biasV), multV, zo, lo);
    const h = i16x8.narrow_i32x4_s(ra, rb);
    const bytes = i8x16.narrow_i16x8_u(h, h);
    const outA = at + <usize>(i * outC);
    const outB = at + <usize>(j * outC);
    if (channels == 4) {
      // For the last of an odd count j == i: the same bytes twice.
      v128.store32_lane(outA, bytes, 0);
      v128.store32_lane(outB, bytes, 1);
    } else {
      storeChannels(outA, bytes, channels);
      storeChannels(outB, i32x4.shuffle(bytes, bytes, 1, 1, 1, 1), channels);
    }
  }
}
