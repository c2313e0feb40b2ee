// The fp32 reference's convolution (src/reference/fp32.ts) in f64x2 lanes, for calibration
// (src/reference/fp32-simd.ts). Each lane holds one output's accumulator and performs exactly the
// reference's operations in its order: start from the bias, then for each filter row, for each
// in-bounds tap, acc += x·w in doubles (the product of two f32 values is exact in a double; wasm
// never fuses the multiply and the add), then ReLU as `acc < 0 ? 0 : acc` and one rounding to f32.
// So the activations are the reference's, bit for bit, and so are the ranges calibrated on them.
//
// Memory: x is the NHWC input as f64; the filter of each group of 4 output channels is packed
// tap-major as f32 [tap][4], groups one after another (weightBytes apart), and promoted to f64 as
// it is read (exact); bias is f64 [cout rounded up to 4]; outputs are f32. A call computes
// `pixels` output pixels of one output row whose in-bounds taps are the same: `rows` filter rows
// of `run` contiguous values each.

const LANES: usize = 4; // output channels per group: two f64x2 accumulators
const TAP: usize = LANES << 2; // bytes of one tap of a packed group

// @ts-ignore: decorator
@inline function weightPair(at: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(at));
}

// @ts-ignore: decorator
@inline function relu2(acc: v128, relu: bool): v128 {
  return relu ? f64x2.pmax(acc, f64x2.splat(0)) : acc;
}

// @ts-ignore: decorator
@inline function store4(out: usize, a: v128, b: v128, relu: bool): void {
  v128.store64_lane(out, f32x4.demote_f64x2_zero(relu2(a, relu)), 0);
  v128.store64_lane(out + 8, f32x4.demote_f64x2_zero(relu2(b, relu)), 0);
}

/**
 * Output pixels p = 0..pixels−1 read x at `x + p·pixelStep`; filter row r of each pixel starts
 * `r·xRowStep` bytes further in x and `r·wRowStep` bytes further in the packed group; `w` points
 * at the first in-bounds tap of group 0. Outputs go to `out + p·outPixelStep + 4·o` as f32.
 */
export function convRow(
  x: usize, pixels: i32, pixelStep: usize, rows: i32, run: i32, xRowStep: usize,
  w: usize, wRowStep: usize, weightBytes: usize, groups: i32, bias: usize,
  out: usize, outPixelStep: usize, relu: bool,
): void {
  let p = 0;
  for (; p + 4 <= pixels; p += 4) {
    const xp = x + <usize>p * pixelStep, op = out + <usize>p * outPixelStep;
    for (let g = 0; g < groups; g++) {
      convFour(xp, pixelStep, rows, run, xRowStep, w + <usize>g * weightBytes, wRowStep,
        bias + (<usize>g << 5), op + (<usize>g << 4), outPixelStep, relu);
    }
  }
  for (; p < pixels; p++) {
    const xp = x + <usize>p * pixelStep, op = out + <usize>p * outPixelStep;
    for (let g = 0; g < groups; g++) {
      convOne(xp, rows, run, xRowStep, w + <usize>g * weightBytes, wRowStep, bias + (<usize>g << 5),
        op + (<usize>g << 4), relu);
    }
  }
}

// Four pixels × four channels: eight independent accumulators keep the adders busy, and each
// loaded weight pair serves four pixels.
// @ts-ignore: decorator
@inline function convFour(
  x: usize, pixelStep: usize, rows: i32, run: i32, xRowStep: usize, w: usize, wRowStep: usize,
  bias: usize, out: usize, outPixelStep: usize, relu: bool,
): void {
  const b0 = v128.load(bias), b1 = v128.load(bias, 16);
  let a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
  for (let r = 0; r < rows; r++) {
    let xr = x + <usize>r * xRowStep;
    let wr = w + <usize>r * wRowStep;
    const end = xr + (<usize>run << 3);
    for (; xr < end; xr += 8, wr += TAP) {
      const w0 = weightPair(wr), w1 = weightPair(wr + 8);
      const x0 = v128.load64_splat(xr);
      a00 = f64x2.add(a00, f64x2.mul(x0, w0));
      a01 = f64x2.add(a01, f64x2.mul(x0, w1));
      const x1 = v128.load64_splat(xr + pixelStep);
      a10 = f64x2.add(a10, f64x2.mul(x1, w0));
      a11 = f64x2.add(a11, f64x2.mul(x1, w1));
      const x2 = v128.load64_splat(xr + 2 * pixelStep);
      a20 = f64x2.add(a20, f64x2.mul(x2, w0));
      a21 = f64x2.add(a21, f64x2.mul(x2, w1));
      const x3 = v128.load64_splat(xr + 3 * pixelStep);
      a30 = f64x2.add(a30, f64x2.mul(x3, w0));
      a31 = f64x2.add(a31, f64x2.mul(x3, w1));
    }
  }
  store4(out, a00, a01, relu);
  store4(out + outPixelStep, a10, a11, relu);
  store4(out + 2 * outPixelStep, a20, a21, relu);
  store4(out + 3 * outPixelStep, a30, a31, relu);
}

// @ts-ignore: decorator
@inline function convOne(
  x: usize, rows: i32, run: i32, xRowStep: usize, w: usize, wRowStep: usize, bias: usize, out: usize,
  relu: bool,
): void {
  let a0 = v128.load(bias), a1 = v128.load(bias, 16);
  for (let r = 0; r < rows; r++) {
    let xr = x + <usize>r * xRowStep;
    let wr = w + <usize>r * wRowStep;
    const end = xr + (<usize>run << 3);
    for (; xr < end; xr += 8, wr += TAP) {
      const v = v128.load64_splat(xr);
      a0 = f64x2.add(a0, f64x2.mul(v, weightPair(wr)));
      a1 = f64x2.add(a1, f64x2.mul(v, weightPair(wr + 8)));
    }
  }
  store4(out, a0, a1, relu);
}

/** First byte the caller may use. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}
