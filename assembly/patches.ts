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
  let row = output + <usize>(first * outW * kp);
  for (let oy = first, end = sliceEnd(outH, part, parts); oy < end; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      memory.fill(row, <u8>zx, kp);
      let dst = row;
      for (let ky = 0; ky < kh; ky++) {
        const y = oy * stride - pad + ky;
        if (<u32>y < <u32>inH) {
          const x0 = ox * stride - pad;
          const first = max(x0, 0), last = min(x0 + kw, inW);
          if (last > first) {
            memory.copy(dst + <usize>((first - x0) * inC), input + <usize>((y * inW + first) * inC), <usize>((last - first) * inC));
          }
        }
        dst += <usize>(kw * inC);
      }
      row += <usize>kp;
    }
  }
}
