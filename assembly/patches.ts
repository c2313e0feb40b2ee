// Patch extraction for convolutions on few input channels (the 3-channel stem).
//
// A 7x7 conv on 3 channels has 147 weights per output channel but only 3 contiguous channels per
// tap, so the direct kernel would spend most of its 8-channel steps on padding. Instead each
// output pixel's receptive field is copied into one row of `kp` = roundUp(kh·kw·cin, 8) bytes
// (taps in the padding and the row's tail read zx) and the conv runs as a 1x1 conv over the rows,
// with weights packed as [cout][kh·kw·cin] (docs/FORMAT.md, "patch layout").

import { sliceStart, sliceEnd } from './parts';

export function patches(
  input: usize, inH: i32, inW: i32, inC: i32, zx: i32,
  kh: i32, kw: i32, stride: i32, pad: i32,
  output: usize, outH: i32, outW: i32, kp: i32, part: i32, parts: i32, thread: i32,
): void {
  const first = sliceStart(outH, part, parts);
  const run = kw * inC;
  const fill = i8x16.splat(<i8>zx);
  let row = output + <usize>(first * outW * kp);
  for (let oy = first, end = sliceEnd(outH, part, parts); oy < end; oy++) {
    const y0 = oy * stride - pad;
    const rowsInside = y0 >= 0 && y0 + kh <= inH;
    for (let ox = 0; ox < outW; ox++) {
      const x0 = ox * stride - pad;
      if (rowsInside && x0 >= 0 && x0 + kw <= inW && run >= 8 && kp >= 16) {
        copyInside(input + <usize>((y0 * inW + x0) * inC), <usize>(inW * inC), kh, run, kp, fill, row);
      } else {
        copyClipped(input, inH, inW, inC, zx, kh, kw, y0, x0, kp, row);
      }
      row += <usize>kp;
    }
  }
}

/**
 * A receptive field wholly inside the input, kh runs of `run` (>= 8) bytes `step` apart, into
 * `row` in whole vectors that stay inside the row: the zero-point tail first, its vector then
 * overwritten by the taps it overlaps. memory.copy and memory.fill call out of the wasm code in V8,
 * which for 7 runs of 21 bytes a pixel cost more than the copying.
 */
// @ts-ignore: decorator
@inline function copyInside(from: usize, step: usize, kh: i32, run: i32, kp: i32, fill: v128, row: usize): void {
  v128.store(row + <usize>(kp - 16), fill);
  let to = row;
  for (let ky = 0; ky < kh; ky++) {
    copyRun(to, from, <usize>run);
    from += step;
    to += <usize>run;
  }
}

/** Copies `run` (>= 8) bytes in 16- or 8-byte pieces, the last one overlapping its predecessor. */
// @ts-ignore: decorator
@inline function copyRun(to: usize, from: usize, run: usize): void {
  if (run < 16) {
    store<u64>(to, load<u64>(from));
    store<u64>(to + run - 8, load<u64>(from + run - 8));
    return;
  }
  for (let i: usize = 0; i < run - 16; i += 16) v128.store(to + i, v128.load(from + i));
  v128.store(to + run - 16, v128.load(from + run - 16));
}

/** A receptive field that reaches into the padding: taps outside the input read zx. */
function copyClipped(input: usize, inH: i32, inW: i32, inC: i32, zx: i32, kh: i32, kw: i32, y0: i32, x0: i32, kp: i32, row: usize): void {
  memory.fill(row, <u8>zx, kp);
  let dst = row;
  for (let ky = 0; ky < kh; ky++) {
    const y = y0 + ky;
    if (<u32>y < <u32>inH) {
      const first = max(x0, 0), last = min(x0 + kw, inW);
      if (last > first) {
        memory.copy(dst + <usize>((first - x0) * inC), input + <usize>((y * inW + first) * inC), <usize>((last - first) * inC));
      }
    }
    dst += <usize>(kw * inC);
  }
}
