/**
 * The fp32 reference's convolution in WebAssembly f64x2 lanes (assembly/fp32-conv.ts), for
 * calibration, which runs the float network over every photo. Each lane performs the reference's
 * operations on one output in the reference's order, so the result is the reference's, bit for bit
 * (test/fp32-simd.test.ts), 5-6 times faster on ResNet-50's layers.
 *
 * Per call, the input is copied into the module's memory as doubles (exact); the filters are
 * packed in groups of 4 output channels, tap-major, once per layer. Output pixels are handed to the
 * kernel a row at a time, in runs whose in-bounds taps are the same, so padding is skipped exactly
 * as the reference skips it (adding 0·w instead could flip the sign of a zero).
 */
import { fp32ConvBase64 } from '../../build/fp32-conv.js';
import type { Shape } from '../model/types.ts';
import { decodeBase64 } from '../runtime/wasm.ts';
import type { Convolve, ConvParams } from './fp32.ts';

interface Fp32ConvExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  convRow(
    x: number,
    pixels: number,
    pixelStep: number,
    rows: number,
    run: number,
    xRowStep: number,
    w: number,
    wRowStep: number,
    weightBytes: number,
    groups: number,
    bias: number,
    out: number,
    outPixelStep: number,
    relu: boolean,
  ): void;
}

/** Output channels per packed group (the kernel's two f64x2 accumulators). */
const LANES = 4;

let module: WebAssembly.Module | undefined;

/**
 * A Convolve for runFloat with its own wasm instance and memory. Each layer's filters are packed
 * on first use and kept for the function's lifetime (as f32: as much memory again as the model's
 * weights), so a calibration over many photos packs them once; the weights must not change
 * meanwhile. Synchronous, as runFloat is: the module is about 1 KB.
 */
export function simdConvolve(): Convolve {
  module ??= new WebAssembly.Module(decodeBase64(fp32ConvBase64));
  const kernel = new WebAssembly.Instance(module).exports as unknown as Fp32ConvExports;
  const filters = new Map<Float32Array, number>();
  let free = kernel.heapBase();
  const packed = (p: ConvParams, weight: Float32Array) => {
    let at = filters.get(weight);
    if (at === undefined) {
      at = free;
      free += roundUp(p.cout, LANES) * filterLength(p) * 4;
      reserve(kernel.memory, free);
      packFilters(new Float32Array(kernel.memory.buffer, at, roundUp(p.cout, LANES) * filterLength(p)), weight, p);
      filters.set(weight, at);
    }
    return at;
  };
  return (p, weight, bias, inShape, outShape, x) => {
    const at = layout(packed(p, weight), free, p, inShape, outShape);
    reserve(kernel.memory, at.end);
    return convolve(kernel, at, p, bias, inShape, outShape, x);
  };
}

/** Byte offsets of the call's arrays in the module's memory. */
interface Layout {
  weight: number;
  x: number;
  bias: number;
  out: number;
  end: number;
}

function layout(weight: number, free: number, p: ConvParams, inShape: Shape, outShape: Shape): Layout {
  const cout = roundUp(p.cout, LANES);
  const x = roundUp(free, 16);
  const bias = x + roundUp(inShape.h * inShape.w * inShape.c * 8, 16);
  const out = bias + cout * 8;
  return { weight, x, bias, out, end: out + outShape.h * outShape.w * cout * 4 };
}

function reserve(memory: WebAssembly.Memory, end: number): void {
  const missing = end - memory.buffer.byteLength;
  if (missing > 0) memory.grow(Math.ceil(missing / 65536));
}

function filterLength(p: ConvParams): number {
  return p.kh * p.kw * p.cin;
}

function convolve(
  kernel: Fp32ConvExports,
  at: Layout,
  p: ConvParams,
  bias: Float32Array,
  inShape: Shape,
  outShape: Shape,
  x: Float32Array,
): Float32Array {
  const { buffer } = kernel.memory;
  const groups = roundUp(p.cout, LANES) / LANES;
  new Float64Array(buffer, at.x, x.length).set(x);
  new Float64Array(buffer, at.bias, groups * LANES).fill(0).set(bias);
  for (let oy = 0; oy < outShape.h; oy++) convOutputRow(kernel, at, p, inShape, outShape, oy);
  return outputs(new Float32Array(buffer, at.out, outShape.h * outShape.w * groups * LANES), p.cout);
}

/** [cout][tap] → [group][tap][4]; the padding channels of the last group are zero. */
function packFilters(packed: Float32Array, weight: Float32Array, p: ConvParams): void {
  const filter = filterLength(p);
  packed.fill(0, Math.floor(p.cout / LANES) * LANES * filter);
  for (let o = 0; o < p.cout; o++) {
    const base = Math.floor(o / LANES) * LANES * filter + (o % LANES);
    const from = o * filter;
    for (let tap = 0; tap < filter; tap++) packed[base + tap * LANES] = weight[from + tap];
  }
}

/** One output row, in runs of pixels whose in-bounds filter columns are the same. */
function convOutputRow(
  kernel: Fp32ConvExports,
  at: Layout,
  p: ConvParams,
  inShape: Shape,
  outShape: Shape,
  oy: number,
): void {
  const { kh, kw, stride, pad, cin } = p;
  const groups = roundUp(p.cout, LANES) / LANES;
  const iy = oy * stride - pad;
  const ky0 = Math.max(0, -iy);
  const rows = Math.max(0, Math.min(kh, inShape.h - iy) - ky0);
  const columns = (ox: number) => {
    const ix = ox * stride - pad;
    const kx0 = Math.max(0, -ix);
    return { ix, kx0, run: Math.max(0, Math.min(kw, inShape.w - ix) - kx0) * cin };
  };
  for (let first = 0; first < outShape.w; ) {
    const { ix, kx0, run } = columns(first);
    let end = first + 1;
    while (end < outShape.w && sameColumns(columns(end), kx0, run)) end++;
    kernel.convRow(
      at.x + ((iy + ky0) * inShape.w + ix + kx0) * cin * 8,
      end - first,
      stride * cin * 8,
      rows,
      run,
      inShape.w * cin * 8,
      at.weight + (ky0 * kw + kx0) * cin * LANES * 4,
      kw * cin * LANES * 4,
      kh * kw * cin * LANES * 4,
      groups,
      at.bias,
      at.out + (oy * outShape.w + first) * groups * LANES * 4,
      groups * LANES * 4,
      p.relu,
    );
    first = end;
  }
}

function sameColumns(c: { kx0: number; run: number }, kx0: number, run: number): boolean {
  return c.kx0 === kx0 && c.run === run;
}

/** A copy of the kernel's [pixel][cout rounded up to 4] outputs without the padding channels. */
function outputs(padded: Float32Array, cout: number): Float32Array {
  const stride = roundUp(cout, LANES);
  if (stride === cout) return padded.slice();
  const out = new Float32Array((padded.length / stride) * cout);
  for (let i = 0; i < out.length / cout; i++) out.set(padded.subarray(i * stride, i * stride + cout), i * cout);
  return out;
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}
