/**
 * The fp32 reference executor: the test oracle the int8 paths are measured against, and the engine
 * the builder runs to measure activations. Plain loops, NHWC, accumulation in doubles. Calibration
 * and the builder swap in a faster conv that computes the same floats (fp32-simd.ts).
 */

import type { ConvGeometry, FloatLayer, FloatModel, Shape } from '../model/types.ts';
import { layerInputs, outputTensor } from '../model/types.ts';

export type TensorObserver = (tensor: number, data: Float32Array) => void;

export type ConvParams = Pick<ConvGeometry, 'kh' | 'kw' | 'stride' | 'pad' | 'cin' | 'cout' | 'relu'>;

/** A convolution (conv and fc layers) that returns exactly what `conv` below returns. */
export type Convolve = typeof conv;

/** Runs the network on one NHWC input (tensor 0) and returns the logits. */
export function runFloat(
  model: FloatModel,
  input: Float32Array,
  observe?: TensorObserver,
  convolve: Convolve = conv,
): Float32Array {
  checkInput(model, input);
  const values: Float32Array[] = [input];
  observe?.(0, input);
  for (const layer of model.layers) {
    const output = runLayer(
      model.tensors,
      layer,
      layerInputs(layer).map((t) => values[t]),
      convolve,
    );
    values[layer.output] = output;
    observe?.(layer.output, output);
  }
  return values[outputTensor(model)];
}

/** One layer; `inputs` are its input tensors in the order layerInputs() lists them. */
export function runLayer(
  tensors: Shape[],
  layer: FloatLayer,
  inputs: Float32Array[],
  convolve: Convolve = conv,
): Float32Array {
  switch (layer.kind) {
    case 'conv':
      return convolve(layer, layer.weight, layer.bias, tensors[layer.input], tensors[layer.output], inputs[0]);
    case 'fc': {
      // A fully connected layer is a 1x1 conv over a 1x1 image with every input value as a channel.
      const pointwise = { kh: 1, kw: 1, stride: 1, pad: 0, cin: layer.cin, cout: layer.cout, relu: false };
      const pixel = (c: number): Shape => ({ h: 1, w: 1, c });
      return convolve(pointwise, layer.weight, layer.bias, pixel(layer.cin), pixel(layer.cout), inputs[0]);
    }
    case 'maxpool':
      return maxpool(layer.k, layer.stride, layer.pad, tensors[layer.input], tensors[layer.output], inputs[0]);
    case 'avgpool':
      return avgpool(layer, tensors[layer.input], tensors[layer.output], inputs[0]);
    case 'affine':
      return affine(layer.scale, layer.shift, layer.relu, inputs[0]);
    case 'add':
      return add(inputs[0], inputs[1], layer.relu);
    case 'gap':
      return globalAveragePool(tensors[layer.input], inputs[0]);
  }
}

/**
 * For one output pixel and one filter row, the in-bounds taps form a single contiguous run in both
 * the NHWC input row and the [cout][kh][kw][cin] weights, so the inner loop is a plain dot product
 * with the padding handled once per row instead of once per tap. Four output channels share each
 * input load, which roughly halves the time; when cout is not a multiple of 4 the spare lanes recompute the
 * last channel and are not stored. Each channel still sums its terms in the same order.
 */
function conv(
  p: ConvParams,
  weight: Float32Array,
  bias: Float32Array,
  inShape: Shape,
  outShape: Shape,
  x: Float32Array,
): Float32Array {
  const { kh, kw, stride, pad, cin, cout, relu } = p;
  const filter = kh * kw * cin;
  const out = new Float32Array(outShape.h * outShape.w * cout);
  const store = (index: number, o: number, acc: number) => {
    if (o < cout) out[index + o] = relu && acc < 0 ? 0 : acc;
  };
  for (let oy = 0; oy < outShape.h; oy++) {
    const iy = oy * stride - pad;
    const ky0 = Math.max(0, -iy);
    const ky1 = Math.min(kh, inShape.h - iy);
    for (let ox = 0; ox < outShape.w; ox++) {
      const ix = ox * stride - pad;
      const kx0 = Math.max(0, -ix);
      const run = (Math.min(kw, inShape.w - ix) - kx0) * cin;
      const outBase = (oy * outShape.w + ox) * cout;
      for (let o = 0; o < cout; o += 4) {
        const o1 = Math.min(o + 1, cout - 1);
        const o2 = Math.min(o + 2, cout - 1);
        const o3 = Math.min(o + 3, cout - 1);
        let a0 = bias[o];
        let a1 = bias[o1];
        let a2 = bias[o2];
        let a3 = bias[o3];
        for (let ky = ky0; ky < ky1; ky++) {
          const xBase = ((iy + ky) * inShape.w + ix + kx0) * cin;
          const tap = (ky * kw + kx0) * cin;
          const w0 = o * filter + tap;
          const w1 = o1 * filter + tap;
          const w2 = o2 * filter + tap;
          const w3 = o3 * filter + tap;
          for (let i = 0; i < run; i++) {
            const v = x[xBase + i];
            a0 += v * weight[w0 + i];
            a1 += v * weight[w1 + i];
            a2 += v * weight[w2 + i];
            a3 += v * weight[w3 + i];
          }
        }
        store(outBase, o, a0);
        store(outBase, o + 1, a1);
        store(outBase, o + 2, a2);
        store(outBase, o + 3, a3);
      }
    }
  }
  return out;
}

/** Padding never wins: only window positions inside the input are compared. */
function maxpool(
  k: number,
  stride: number,
  pad: number,
  inShape: Shape,
  outShape: Shape,
  x: Float32Array,
): Float32Array {
  const { c } = inShape;
  const out = new Float32Array(outShape.h * outShape.w * c).fill(-Infinity);
  for (let oy = 0; oy < outShape.h; oy++) {
    const iy0 = Math.max(0, oy * stride - pad);
    const iy1 = Math.min(inShape.h, oy * stride - pad + k);
    for (let ox = 0; ox < outShape.w; ox++) {
      const ix0 = Math.max(0, ox * stride - pad);
      const ix1 = Math.min(inShape.w, ox * stride - pad + k);
      const outBase = (oy * outShape.w + ox) * c;
      for (let iy = iy0; iy < iy1; iy++) {
        for (let ix = ix0; ix < ix1; ix++) {
          const inBase = (iy * inShape.w + ix) * c;
          for (let ch = 0; ch < c; ch++) out[outBase + ch] = Math.max(out[outBase + ch], x[inBase + ch]);
        }
      }
    }
  }
  return out;
}

/** The mean of the window's in-bounds values: padding and the ceil-mode overhang are not counted. */
function avgpool(
  p: { k: number; stride: number; pad: number },
  inShape: Shape,
  outShape: Shape,
  x: Float32Array,
): Float32Array {
  const { c } = inShape;
  const out = new Float32Array(outShape.h * outShape.w * c);
  for (let oy = 0; oy < outShape.h; oy++) {
    const iy0 = Math.max(0, oy * p.stride - p.pad);
    const iy1 = Math.min(inShape.h, oy * p.stride - p.pad + p.k);
    for (let ox = 0; ox < outShape.w; ox++) {
      const ix0 = Math.max(0, ox * p.stride - p.pad);
      const ix1 = Math.min(inShape.w, ox * p.stride - p.pad + p.k);
      const sums = new Float64Array(c);
      for (let iy = iy0; iy < iy1; iy++) {
        for (let ix = ix0; ix < ix1; ix++) {
          const inBase = (iy * inShape.w + ix) * c;
          for (let ch = 0; ch < c; ch++) sums[ch] += x[inBase + ch];
        }
      }
      const count = (iy1 - iy0) * (ix1 - ix0);
      out.set(
        sums.map((sum) => sum / count),
        (oy * outShape.w + ox) * c,
      );
    }
  }
  return out;
}

/** Per channel x·scale + shift (a BatchNorm in eval mode), then ReLU if asked. */
function affine(scale: Float32Array, shift: Float32Array, relu: boolean, x: Float32Array): Float32Array {
  const c = scale.length;
  return x.map((v, i) => {
    const y = v * scale[i % c] + shift[i % c];
    return relu && y < 0 ? 0 : y;
  });
}

function add(a: Float32Array, b: Float32Array, relu: boolean): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const sum = a[i] + b[i];
    out[i] = relu && sum < 0 ? 0 : sum;
  }
  return out;
}

function globalAveragePool(inShape: Shape, x: Float32Array): Float32Array {
  const { c } = inShape;
  const sums = new Float64Array(c);
  for (let i = 0; i < x.length; i++) sums[i % c] += x[i];
  const pixels = inShape.h * inShape.w;
  return Float32Array.from(sums, (sum) => sum / pixels);
}

/** A wrong-sized input would not fail on its own: the loops would read garbage or undefined. */
export function checkInput(model: FloatModel, input: Float32Array): void {
  const { h, w, c } = model.tensors[0];
  if (input.length !== h * w * c) {
    throw new Error(`input has ${input.length} values, expected ${h}x${w}x${c} = ${h * w * c}`);
  }
}
