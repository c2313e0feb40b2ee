/**
 * Scalar integer reference of the int8 network, written only from docs/ARCHITECTURE.md
 * ("The exact int8 arithmetic"). It is the oracle the WebAssembly kernels are compared against
 * bit for bit, so it deliberately shares no code with the runtime: plain loops, one formula per
 * spec line. Every f32 operation of the spec is a Math.fround here; everything else is exact
 * integer arithmetic in JS numbers (all sums stay far below 2^53).
 */
import { outSize, type QuantModel, type Shape } from '../../src/model/types.ts';

export interface AvgPoolParams extends PoolParams {
  ceil: boolean;
}

export interface ConvParams {
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  cin: number;
  cout: number;
  relu: boolean;
  /** [cout][kh][kw][cin] */
  weight: Int8Array;
  bias: Int32Array;
  multiplier: Float32Array;
}

export interface PoolParams {
  k: number;
  stride: number;
  pad: number;
}

export interface FcParams {
  cin: number;
  cout: number;
  /** [cout][cin] */
  weight: Int8Array;
  bias: Int32Array;
  multiplier: Float32Array;
}

const f32 = Math.fround;

/** Round to nearest integer, ties to even. Math.round would send -2.5 to -2 but 2.5 to 3. */
export function rne(v: number): number {
  // Infinities (an overflowing f32 product) are left alone; the clamp that follows bounds them.
  if (!Number.isFinite(v)) return v;
  const floor = Math.floor(v);
  const frac = v - floor; // exact: it is just the fraction bits of v
  if (frac < 0.5) return floor;
  if (frac > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

export function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

/** Spec "Requantization": y = f32(f32(acc) · M); q = clamp(rne(y) + zo, lo, 255). */
export function requantize(acc: number, multiplier: number, zo: number, lo: number): number {
  const y = f32(f32(acc) * f32(multiplier));
  return clamp(rne(y) + zo, lo, 255);
}

function checkLength(name: string, data: ArrayLike<number>, expected: number): void {
  if (data.length !== expected) {
    throw new Error(`${name}: length ${data.length}, expected ${expected}`);
  }
}

export function convOutShape(
  shapeIn: Shape,
  p: { kh: number; kw: number; stride: number; pad: number; cout: number },
): Shape {
  return {
    h: outSize(shapeIn.h, p.kh, p.stride, p.pad),
    w: outSize(shapeIn.w, p.kw, p.stride, p.pad),
    c: p.cout,
  };
}

export function convRef(x: Uint8Array, shapeIn: Shape, zx: number, layer: ConvParams, zo: number): Uint8Array {
  const { kh, kw, stride, pad, cin, cout } = layer;
  if (shapeIn.c !== cin) throw new Error(`conv: input has ${shapeIn.c} channels, layer expects ${cin}`);
  checkLength('conv input', x, shapeIn.h * shapeIn.w * cin);
  checkLength('conv weight', layer.weight, cout * kh * kw * cin);
  checkLength('conv bias', layer.bias, cout);
  checkLength('conv multiplier', layer.multiplier, cout);

  const out = convOutShape(shapeIn, layer);
  const y = new Uint8Array(out.h * out.w * cout);
  const lo = layer.relu ? zo : 0;
  const w = layer.weight;
  // Shift once so the inner loop is a bare dot product; padded taps are skipped, which is the
  // same as reading zx (they would contribute (zx − zx)·w = 0).
  const xs = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) xs[i] = x[i] - zx;

  const rowIn = shapeIn.w * cin;
  for (let oy = 0; oy < out.h; oy++) {
    const iy0 = oy * stride - pad;
    const ky0 = Math.max(0, -iy0);
    const ky1 = Math.min(kh, shapeIn.h - iy0);
    for (let ox = 0; ox < out.w; ox++) {
      const ix0 = ox * stride - pad;
      const kx0 = Math.max(0, -ix0);
      const kx1 = Math.min(kw, shapeIn.w - ix0);
      // For one kernel row, the in-bounds taps × channels are contiguous in both X and W.
      const span = (kx1 - kx0) * cin;
      const yBase = (oy * out.w + ox) * cout;
      for (let o = 0; o < cout; o++) {
        let acc = layer.bias[o];
        for (let ky = ky0; ky < ky1; ky++) {
          const xRow = (iy0 + ky) * rowIn + (ix0 + kx0) * cin;
          const wRow = ((o * kh + ky) * kw + kx0) * cin;
          for (let j = 0; j < span; j++) acc += xs[xRow + j] * w[wRow + j];
        }
        y[yBase + o] = requantize(acc, layer.multiplier[o], zo, lo);
      }
    }
  }
  return y;
}

export function maxpoolRef(x: Uint8Array, shape: Shape, p: PoolParams): Uint8Array {
  const { k, stride, pad } = p;
  const { h, w, c } = shape;
  checkLength('maxpool input', x, h * w * c);
  const oh = outSize(h, k, stride, pad);
  const ow = outSize(w, k, stride, pad);
  const y = new Uint8Array(oh * ow * c);
  for (let oy = 0; oy < oh; oy++) {
    const iy0 = oy * stride - pad;
    const ky0 = Math.max(0, -iy0);
    const ky1 = Math.min(k, h - iy0);
    for (let ox = 0; ox < ow; ox++) {
      const ix0 = ox * stride - pad;
      const kx0 = Math.max(0, -ix0);
      const kx1 = Math.min(k, w - ix0);
      if (ky0 >= ky1 || kx0 >= kx1) {
        throw new Error(`maxpool: window (${oy},${ox}) lies entirely in the padding`);
      }
      for (let ch = 0; ch < c; ch++) {
        // Only in-bounds values compete, so padding never wins (not even as a 0).
        let m = -1;
        for (let ky = ky0; ky < ky1; ky++) {
          for (let kx = kx0; kx < kx1; kx++) {
            const v = x[((iy0 + ky) * w + (ix0 + kx)) * c + ch];
            if (v > m) m = v;
          }
        }
        y[(oy * ow + ox) * c + ch] = m;
      }
    }
  }
  return y;
}

/** Spec "avgpool": output size rounded up in ceil mode, but no window starting past input + padding. */
export function avgpoolOutSize(size: number, p: AvgPoolParams): number {
  if (!p.ceil) return outSize(size, p.k, p.stride, p.pad);
  const n = Math.ceil((size + 2 * p.pad - p.k) / p.stride) + 1;
  return (n - 1) * p.stride >= size + p.pad ? n - 1 : n;
}

/** Spec "avgpool": q = floor((2·Σ + n) / (2n)) over the n in-bounds values of each window. */
export function avgpoolRef(x: Uint8Array, shape: Shape, p: AvgPoolParams): Uint8Array {
  const { h, w, c } = shape;
  checkLength('avgpool input', x, h * w * c);
  const oh = avgpoolOutSize(h, p);
  const ow = avgpoolOutSize(w, p);
  const y = new Uint8Array(oh * ow * c);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      for (let ch = 0; ch < c; ch++) {
        let sum = 0;
        let n = 0;
        for (let ky = 0; ky < p.k; ky++) {
          for (let kx = 0; kx < p.k; kx++) {
            const iy = oy * p.stride - p.pad + ky;
            const ix = ox * p.stride - p.pad + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            sum += x[(iy * w + ix) * c + ch];
            n++;
          }
        }
        if (n === 0) throw new Error(`avgpool: window (${oy},${ox}) holds no input value`);
        y[(oy * ow + ox) * c + ch] = Math.floor((2 * sum + n) / (2 * n));
      }
    }
  }
  return y;
}

/** Spec "affine": y = f32(f32(f32(q − zx)·M[c]) + B[c]); q' = clamp(rne(y) + zo, lo, 255). */
export function affineRef(
  x: Uint8Array,
  channels: number,
  zx: number,
  multiplier: Float32Array,
  offset: Float32Array,
  zo: number,
  relu: boolean,
): Uint8Array {
  checkLength('affine multiplier', multiplier, channels);
  checkLength('affine offset', offset, channels);
  const lo = relu ? zo : 0;
  const y = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % channels;
    const v = f32(f32(f32(x[i] - zx) * multiplier[c]) + offset[c]);
    y[i] = clamp(rne(v) + zo, lo, 255);
  }
  return y;
}

export function addRef(
  a: Uint8Array,
  za: number,
  b: Uint8Array,
  zb: number,
  multiplierA: number,
  multiplierB: number,
  zo: number,
  relu: boolean,
): Uint8Array {
  checkLength('add input B', b, a.length);
  const ma = f32(multiplierA);
  const mb = f32(multiplierB);
  const lo = relu ? zo : 0;
  const y = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = f32(f32(f32(a[i] - za) * ma) + f32(f32(b[i] - zb) * mb));
    y[i] = clamp(rne(v) + zo, lo, 255);
  }
  return y;
}

export function gapRef(x: Uint8Array, shape: Shape, zx: number, multiplier: number, zo: number): Uint8Array {
  const { h, w, c } = shape;
  checkLength('gap input', x, h * w * c);
  const y = new Uint8Array(c);
  for (let ch = 0; ch < c; ch++) {
    let sum = 0;
    for (let p = 0; p < h * w; p++) sum += x[p * c + ch] - zx;
    y[ch] = requantize(sum, multiplier, zo, 0);
  }
  return y;
}

export function fcRef(x: Uint8Array, zx: number, layer: FcParams): Float32Array {
  const { cin, cout, weight } = layer;
  checkLength('fc input', x, cin);
  checkLength('fc weight', weight, cout * cin);
  checkLength('fc bias', layer.bias, cout);
  checkLength('fc multiplier', layer.multiplier, cout);
  const logits = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    let acc = layer.bias[o];
    for (let i = 0; i < cin; i++) acc += (x[i] - zx) * weight[o * cin + i];
    logits[o] = f32(f32(acc) * layer.multiplier[o]);
  }
  return logits;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.h === b.h && a.w === b.w && a.c === b.c;
}

/**
 * Executes the layers in order; returns the f32 logits of the last layer, which must be fc.
 * `observe` sees every uint8 tensor as it is written.
 */
export function runQuantReference(
  model: QuantModel,
  input: Uint8Array,
  observe?: (tensor: number, data: Uint8Array) => void,
): Float32Array {
  const { tensors, layers } = model;
  const t0 = tensors[0];
  checkLength('network input', input, t0.h * t0.w * t0.c);
  const values: (Uint8Array | undefined)[] = new Array(tensors.length);
  values[0] = input;
  const read = (id: number): Uint8Array => {
    const v = values[id];
    if (!v) throw new Error(`tensor ${id} is read before it is written`);
    return v;
  };

  for (let li = 0; li < layers.length; li++) {
    const layer = layers[li];
    const outT = tensors[layer.output];
    if (layer.kind === 'fc') {
      // Logits are f32, not a uint8 tensor, so nothing can consume them: fc must be last.
      if (li !== layers.length - 1) throw new Error(`fc layer ${layer.name} is not the last layer`);
      const inT = tensors[layer.input];
      return fcRef(read(layer.input), inT.zeroPoint, layer);
    }
    let y: Uint8Array;
    let shape: Shape;
    switch (layer.kind) {
      case 'conv': {
        const inT = tensors[layer.input];
        y = convRef(read(layer.input), inT, inT.zeroPoint, layer, outT.zeroPoint);
        shape = convOutShape(inT, layer);
        break;
      }
      case 'maxpool': {
        const inT = tensors[layer.input];
        if (inT.zeroPoint !== outT.zeroPoint || inT.scale !== outT.scale) {
          throw new Error(`maxpool ${layer.name}: output quantization must equal the input's`);
        }
        y = maxpoolRef(read(layer.input), inT, layer);
        shape = {
          h: outSize(inT.h, layer.k, layer.stride, layer.pad),
          w: outSize(inT.w, layer.k, layer.stride, layer.pad),
          c: inT.c,
        };
        break;
      }
      case 'add': {
        const [ia, ib] = layer.inputs;
        const ta = tensors[ia];
        const tb = tensors[ib];
        if (!sameShape(ta, tb)) throw new Error(`add ${layer.name}: input shapes differ`);
        y = addRef(
          read(ia),
          ta.zeroPoint,
          read(ib),
          tb.zeroPoint,
          layer.multiplierA,
          layer.multiplierB,
          outT.zeroPoint,
          layer.relu,
        );
        shape = ta;
        break;
      }
      case 'avgpool': {
        const inT = tensors[layer.input];
        if (inT.zeroPoint !== outT.zeroPoint || inT.scale !== outT.scale) {
          throw new Error(`avgpool ${layer.name}: output quantization must equal the input's`);
        }
        y = avgpoolRef(read(layer.input), inT, layer);
        shape = { h: avgpoolOutSize(inT.h, layer), w: avgpoolOutSize(inT.w, layer), c: inT.c };
        break;
      }
      case 'affine': {
        const inT = tensors[layer.input];
        y = affineRef(
          read(layer.input),
          inT.c,
          inT.zeroPoint,
          layer.multiplier,
          layer.offset,
          outT.zeroPoint,
          layer.relu,
        );
        shape = inT;
        break;
      }
      case 'gap': {
        const inT = tensors[layer.input];
        y = gapRef(read(layer.input), inT, inT.zeroPoint, layer.multiplier, outT.zeroPoint);
        shape = { h: 1, w: 1, c: inT.c };
        break;
      }
    }
    if (!sameShape(shape, outT)) {
      throw new Error(
        `layer ${layer.name}: computed shape ${shape.h}x${shape.w}x${shape.c} but tensor ${layer.output} is ${outT.h}x${outT.w}x${outT.c}`,
      );
    }
    values[layer.output] = y;
    observe?.(layer.output, y);
  }
  throw new Error('the last layer is not fc, so the network produces no logits');
}
