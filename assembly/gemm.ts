import { roundUp } from './conv';
import { sliceStart, sliceEnd } from './parts';
import { prepareGroupC2, gatherQuads, gatherTapQuads, tilesC2 } from './gemm-c2';
import { prepareGroupC8, gatherPixels, gatherTapPixels, tilesC8 } from './gemm-c8';

// Convolution as a blocked GEMM: output pixels x K times K x output channels, over the packed
// weights of docs/FORMAT.md. `gemm` runs a 1x1 conv (pad 0, any stride: K is the input channels);
// `gemmTaps` any other (the 3x3 stride-2 convs: K is kh·kw·Cp, every tap's channels in the order of
// the packed weights, a tap in the padding reading the pad row of zx, as the direct conv does).
//
// Both operands are prepared once per use in this thread's scratch, so the micro-kernel only loads
// whole vectors: `groupBlocks` blocks of 4 filters at a time are laid out as the micro-kernel reads
// them (kept in L2), and `chunkPixels` output pixels at a time have their input pixels gathered
// (which is how a stride and taps are taken) and converted (16 bytes per 8 channels, kept in L1). A
// chunk runs every block of the group before the next chunk, so each output row fills while it is
// cached. The micro-kernel and both layouts depend on the build: gemm-c2.ts (baseline: 4 pixels x 8
// channels, no fold) or gemm-c8.ts (relaxed SIMD: 2 pixels x 4 channels, mac.ts). The runtime picks
// groupBlocks (even) and chunkPixels (a multiple of 4) and sizes the scratch (conv-path.ts
// gemmPlan). Chunks of work (parts.ts) are ranges of quads of output pixels when `byPixels` is set,
// each part then preparing every filter again, else ranges of output-channel blocks, each part then
// gathering every pixel again: the runtime slices whichever repeats less (gemmSlicesPixels).

export function gemm(
  input: usize, inW: i32, inC: i32,
  params: usize, outC: i32, stride: i32,
  output: usize, outH: i32, outW: i32, zo: i32, lo: i32,
  groupBlocks: i32, chunkPixels: i32, byPixels: i32, scratch: usize, scratchStride: i32, part: i32, parts: i32, thread: i32,
): void {
  blockedGemm(
    false, input, 0, inW, inC, params, outC, 1, 1, stride, 0, output, outH, outW, zo, lo, 0,
    groupBlocks, chunkPixels, byPixels, scratch, scratchStride, part, parts, thread,
  );
}

export function gemmTaps(
  input: usize, inH: i32, inW: i32, inC: i32,
  params: usize, outC: i32, kh: i32, kw: i32, stride: i32, pad: i32,
  output: usize, outH: i32, outW: i32, zo: i32, lo: i32, padRow: usize,
  groupBlocks: i32, chunkPixels: i32, byPixels: i32, scratch: usize, scratchStride: i32, part: i32, parts: i32, thread: i32,
): void {
  blockedGemm(
    true, input, inH, inW, inC, params, outC, kh, kw, stride, pad, output, outH, outW, zo, lo, padRow,
    groupBlocks, chunkPixels, byPixels, scratch, scratchStride, part, parts, thread,
  );
}

/** Both kernels' loops; `taps` (a constant in each) picks the gather. */
// @ts-ignore: decorator
@inline function blockedGemm(
  taps: bool, input: usize, inH: i32, inW: i32, inC: i32,
  params: usize, outC: i32, kh: i32, kw: i32, stride: i32, pad: i32,
  output: usize, outH: i32, outW: i32, zo: i32, lo: i32, padRow: usize,
  groupBlocks: i32, chunkPixels: i32, byPixels: i32, scratch: usize, scratchStride: i32, part: i32, parts: i32, thread: i32,
): void {
  const chunk = scratch + <usize>(thread * scratchStride);
  const cp = roundUp(inC, 8);
  const k = kh * kw * cp;
  const blocks = roundUp(outC, 4) / 4;
  const blockBytes = <usize>(k * 4);
  const weights = params + <usize>(blocks * 32);
  const prepared = chunk + <usize>(chunkPixels * k * 2);
  const pixels = outH * outW;
  const pixelStep = <usize>(stride * inC);
  const rowStep = <usize>(stride * inW * inC);
  const quads = (pixels + 3) >> 2;
  // This part's output-channel blocks [first, end) and output pixels [p1, p2): a slice of either.
  const units = byPixels ? quads : blocks;
  const from = sliceStart(units, part, parts), to = sliceEnd(units, part, parts);
  const first = byPixels ? 0 : from, end = byPixels ? blocks : to;
  const p1 = byPixels ? from * 4 : 0, p2 = byPixels ? min(pixels, to * 4) : pixels;
  for (let g0 = first; g0 < end; g0 += groupBlocks) {
    const g1 = min(end, g0 + groupBlocks);
    const block = weights + <usize>g0 * blockBytes;
    const group = ASC_FEATURE_RELAXED_SIMD ? prepareGroupC8(block, g1 - g0, k, prepared) : prepareGroupC2(block, g1 - g0, k, prepared);
    for (let p0 = p1; p0 < p2; p0 += chunkPixels) {
      const n = min(p2 - p0, chunkPixels);
      const out = output + <usize>(p0 * outC);
      const oy = p0 / outW;
      const ox = p0 - oy * outW;
      const row = input + <usize>(oy * stride * inW * inC);
      if (ASC_FEATURE_RELAXED_SIMD) {
        if (taps) gatherTapPixels(input, inH, inW, inC, kh, kw, stride, pad, padRow, oy, ox, outW, cp, n, chunk);
        else gatherPixels(row, ox, outW, pixelStep, rowStep, cp, n, chunk);
        tilesC8(chunk, n, k, group, params, blocks, g0, g1, outC, out, zo, lo);
      } else {
        if (taps) gatherTapQuads(input, inH, inW, inC, kh, kw, stride, pad, padRow, oy, ox, outW, cp, n, chunk);
        else gatherQuads(row, ox, outW, pixelStep, rowStep, cp, n, chunk);
        tilesC2(chunk, n, k, group, params, blocks, g0, g1, outC, out, zo, lo);
      }
    }
  }
}
