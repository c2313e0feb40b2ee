import { requantize4 } from './requantize';
import { loadActivations, loadPrepared, mac, foldAccumulators, prepareWeights, PREPARED_GROUP_BYTES } from './mac';
import { roundUp, storeChannels } from './conv';
import { sliceStart, sliceEnd } from './parts';

// 1x1 convolution (pad 0, any stride) as a blocked GEMM: output pixels x input channels times input
// channels x output channels, over the packed weights of docs/FORMAT.md.
//
// Both operands are prepared once per use in this thread's scratch, so the micro-kernel only loads
// whole vectors: `groupBlocks` blocks of 4 filters at a time are widened as mac.ts prepares them
// (kept in L2), and `chunkPixels` output pixels at a time have their input pixels gathered (which
// is how a stride is taken) and converted as loadActivations reads them (16 bytes per 8 channels,
// kept in L1). The byte loads with their conversions cost the dot_i16x8 path ~10% in conv.ts's
// 2 x 4 loop, which is otherwise bound by the multiplier. A chunk runs every block of the group
// before the next chunk, so each output row fills while it is cached. The micro-kernel is conv's
// 2 pixels x 4 channels (16 xmm registers fit no larger tile without spills in V8). The
// runtime picks groupBlocks and chunkPixels and sizes the scratch (conv-path.ts gemmPlan). Chunks of
// work are ranges of output-channel blocks, as in conv (parts.ts); each part gathers the pixels again,
// which is why a chunk is never cut below threads.ts's MIN_CHUNK_WORK.

/** Bytes of one pixel's prepared activations: 16 per 8 input channels in either build. */
// @ts-ignore: decorator
@inline function preparedRowBytes(cp: i32): usize {
  return <usize>(cp * 2);
}

export function gemm(
  input: usize, inW: i32, inC: i32,
  params: usize, outC: i32, stride: i32,
  output: usize, outH: i32, outW: i32, zo: i32, lo: i32,
  groupBlocks: i32, chunkPixels: i32, scratch: usize, scratchStride: i32, part: i32, parts: i32, thread: i32,
): void {
  const chunk = scratch + <usize>(thread * scratchStride);
  const cp = roundUp(inC, 8);
  const blocks = roundUp(outC, 4) / 4;
  const blockBytes = <usize>(cp * 4);
  const preparedBlockBytes = blockBytes / 32 * PREPARED_GROUP_BYTES;
  const weights = params + <usize>(blocks * 32);
  const prepared = chunk + <usize>chunkPixels * preparedRowBytes(cp);
  const pixels = outH * outW;
  const end = sliceEnd(blocks, part, parts);
  for (let g0 = sliceStart(blocks, part, parts); g0 < end; g0 += groupBlocks) {
    const g1 = min(end, g0 + groupBlocks);
    const group = prepareWeights(weights + <usize>g0 * blockBytes, <usize>(g1 - g0) * blockBytes, prepared);
    for (let p0 = 0; p0 < pixels; p0 += chunkPixels) {
      const n = min(pixels - p0, chunkPixels);
      gatherPixels(input, inW, inC, cp, stride, outW, p0, n, chunk);
      const out = output + <usize>(p0 * outC);
      for (let ob = g0; ob < g1; ob++) {
        tiles(chunk, n, cp, group + <usize>(ob - g0) * preparedBlockBytes, params, blocks, ob, outC, out, zo, lo);
      }
    }
  }
}

/** The input pixels of output pixels [p0, p0 + n), each as loadActivations reads its cp channels, into `chunk`. */
function gatherPixels(input: usize, inW: i32, inC: i32, cp: i32, stride: i32, outW: i32, p0: i32, n: i32, chunk: usize): void {
  const oy = p0 / outW;
  let ox = p0 - oy * outW;
  let row = input + <usize>(oy * stride * inW * inC);
  const pixelStep = <usize>(stride * inC);
  const rowStep = <usize>(stride * inW * inC);
  let to = chunk;
  for (let i = 0; i < n; i++) {
    const from = row + <usize>ox * pixelStep;
    for (let c = 0; c < cp; c += 8) {
      v128.store(to, loadActivations(from + <usize>c));
      to += 16;
    }
    if (++ox == outW) { ox = 0; row += rowStep; }
  }
}

/** `n` prepared pixels at `chunk` times output-channel block `ob` (prepared at `w0`), two pixels at a time, into output rows from `out`. */
// @ts-ignore: decorator
@inline function tiles(
  chunk: usize, n: i32, cp: i32, w0: usize,
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
    let w = w0;
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
