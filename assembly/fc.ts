import { loadActivations, loadWeights, mac, foldAccumulators } from './mac';
import { roundUp } from './conv';
import { sliceStart, sliceEnd } from './parts';

// Fully connected layer to f32 logits. Same packed payload as a 1x1 conv (docs/FORMAT.md):
// 4 output channels per block, 8 input channels per step, zero point folded into the bias.
// Writes roundUp(outC, 4) floats: the arena sizes the logits buffer for that.

export function fc(input: usize, inC: i32, params: usize, outC: i32, output: usize, part: i32, parts: i32, thread: i32): void {
  const cp = roundUp(inC, 8);
  const blocks = roundUp(outC, 4) / 4;
  const multiplier = params + <usize>(blocks * 16);
  const first = sliceStart(blocks, part, parts), end = sliceEnd(blocks, part, parts);
  let w = params + <usize>(blocks * 32) + <usize>(first * cp * 4);
  for (let ob = first; ob < end; ob++) {
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    for (let c = 0; c < cp; c += 8) {
      const x = loadActivations(input + <usize>c);
      a0 = mac(a0, x, loadWeights(w, 0));
      a1 = mac(a1, x, loadWeights(w, 1));
      a2 = mac(a2, x, loadWeights(w, 2));
      a3 = mac(a3, x, loadWeights(w, 3));
      w += 32;
    }
    const acc = i32x4.add(foldAccumulators(a0, a1, a2, a3), v128.load(params + <usize>(ob * 16)));
    const logits = f32x4.mul(f32x4.convert_i32x4_s(acc), v128.load(multiplier + <usize>(ob * 16)));
    v128.store(output + <usize>(ob * 16), logits);
  }
}
