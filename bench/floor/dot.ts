// @ts-nocheck: AssemblyScript (v128, usize, memory.data), compiled by bench/floor.ts; tsc sees the
// file only because tsconfig includes bench/.

// The throughput limit of the step our conv kernels repeat: i32x4.dot_i16x8_s + i32x4.add into a
// 2-pixel x 4-channel tile of 8 independent accumulators, 2 input and 4 weight vectors loaded per
// step from 3 KB that stay in L1. No loop can do int8 MACs faster with these instructions.

const STEPS = 32;
const X = memory.data(STEPS * 32);
const W = memory.data(STEPS * 64);

/** 8 dots of 8 MACs per step. */
export const MACS_PER_REP: i32 = STEPS * 8 * 8;

/** Returns a value derived from every accumulator, so no work can be optimized away. */
export function run(reps: i32): i32 {
  let a0 = i32x4.splat(0),
    a1 = i32x4.splat(0),
    a2 = i32x4.splat(0),
    a3 = i32x4.splat(0);
  let b0 = i32x4.splat(0),
    b1 = i32x4.splat(0),
    b2 = i32x4.splat(0),
    b3 = i32x4.splat(0);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < STEPS; k++) {
      const x = X + <usize>(k * 32);
      const w = W + <usize>(k * 64);
      const xa = v128.load(x);
      const xb = v128.load(x, 16);
      const w0 = v128.load(w);
      const w1 = v128.load(w, 16);
      const w2 = v128.load(w, 32);
      const w3 = v128.load(w, 48);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(xa, w0));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(xa, w1));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(xa, w2));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(xa, w3));
      b0 = i32x4.add(b0, i32x4.dot_i16x8_s(xb, w0));
      b1 = i32x4.add(b1, i32x4.dot_i16x8_s(xb, w1));
      b2 = i32x4.add(b2, i32x4.dot_i16x8_s(xb, w2));
      b3 = i32x4.add(b3, i32x4.dot_i16x8_s(xb, w3));
    }
  }
  const s = i32x4.add(i32x4.add(i32x4.add(a0, a1), i32x4.add(a2, a3)), i32x4.add(i32x4.add(b0, b1), i32x4.add(b2, b3)));
  return i32x4.extract_lane(s, 0) ^ i32x4.extract_lane(s, 1) ^ i32x4.extract_lane(s, 2) ^ i32x4.extract_lane(s, 3);
}
