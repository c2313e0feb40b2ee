/**
 * New ranges for the tensors after a dropped block, measured on photos. The int8 model has no
 * float weights, so the shortened int8 network itself is run (by the runtime, layer by layer) and
 * each layer's value before requantization is observed: the real number its int32 accumulator
 * (or an add's, affine's or gap's sum) stands for, which is exact integer arithmetic on the uint8
 * tensors the kernels actually read, times the input's scale. Ranges come from the percentile
 * calibrator the converter uses (99.999%), then requantize.ts moves each tensor to its new range.
 * docs/ARCHITECTURE.md ("Lesions") says why this and what it costs.
 */

import { writeModel } from '../format/writer.ts';
import type { QuantLayer, QuantModel, QuantTensor } from '../model/types.ts';
import { tensorCalibrator } from '../quantize/calibrate.ts';
import { loadModel } from '../runtime/model.ts';
import type { StudyPhoto } from './photos.ts';
import { requantizeTensor } from './requantize.ts';

/** Output pixels of a conv observed per photo: its weights in JavaScript are the slow part. */
const CONV_SAMPLES = 8;

/** `model` with every tensor written by layers `from` onwards (conv, add, affine, gap) recalibrated on `photos`. */
export async function recalibrate(model: QuantModel, from: number, photos: StudyPhoto[]): Promise<QuantModel> {
  const observed = model.layers.map(
    (layer, i) => i >= from && layer.kind !== 'maxpool' && layer.kind !== 'avgpool' && layer.kind !== 'fc',
  );
  const calibrator = tensorCalibrator(model.tensors.length, { method: 'percentile' });
  const runtime = await loadModel(writeModel(model), { threads: 1 });
  try {
    const network = runtime.layers;
    photos.forEach((photo, p) => {
      network.setInput(photo.input);
      network.header.layers.forEach((header, i) => {
        network.runLayer(header, i);
        const layer = model.layers[i];
        if (observed[i])
          calibrator.observe(
            layer.output,
            realBeforeRequantization(layer, model.tensors, (t) => network.readTensor(t), p),
          );
      });
    });
  } finally {
    runtime.dispose();
  }
  const ranges = calibrator.quantParams({ ...model, layers: [] });
  let recalibrated = model;
  model.layers.forEach((layer, i) => {
    if (observed[i]) recalibrated = requantizeTensor(recalibrated, layer.output, ranges[layer.output]);
  });
  return recalibrated;
}

/** The real values a layer computes before it rounds to its output's uint8 (after its ReLU). */
function realBeforeRequantization(
  layer: QuantLayer,
  tensors: QuantTensor[],
  read: (t: number) => Uint8Array,
  photo: number,
): Float32Array {
  const relu = (v: number) => ('relu' in layer && layer.relu ? Math.max(0, v) : v);
  switch (layer.kind) {
    case 'add': {
      const [a, b] = layer.inputs.map((t) => ({ q: read(t), ...tensors[t] }));
      return Float32Array.from(a.q, (qa, i) => relu(a.scale * (qa - a.zeroPoint) + b.scale * (b.q[i] - b.zeroPoint)));
    }
    case 'affine': {
      const x = tensors[layer.input];
      const sy = tensors[layer.output].scale;
      return Float32Array.from(read(layer.input), (q, i) =>
        relu(sy * ((q - x.zeroPoint) * layer.multiplier[i % x.c] + layer.offset[i % x.c])),
      );
    }
    case 'gap': {
      const x = tensors[layer.input];
      const q = read(layer.input);
      const sums = new Float32Array(x.c);
      q.forEach((v, i) => (sums[i % x.c] += v - x.zeroPoint));
      return sums.map((s) => (s * x.scale) / (x.h * x.w));
    }
    case 'conv':
      return convSamples(layer, tensors, read(layer.input), photo);
    default:
      throw new RangeError(`${layer.name}: ${layer.kind} output is not recalibrated`);
  }
}

/** acc·M·s_out (= acc·s_in·s_w) at CONV_SAMPLES output pixels, spread over the map and shifted per photo. */
function convSamples(
  layer: Extract<QuantLayer, { kind: 'conv' }>,
  tensors: QuantTensor[],
  q: Uint8Array,
  photo: number,
): Float32Array {
  const x = tensors[layer.input];
  const out = tensors[layer.output];
  const pixels = out.h * out.w;
  const step = Math.max(1, Math.floor(pixels / CONV_SAMPLES));
  const chosen = Array.from({ length: Math.min(CONV_SAMPLES, pixels) }, (_, k) => (k * step + (photo % step)) % pixels);
  const values = new Float32Array(chosen.length * layer.cout);
  chosen.forEach((pixel, k) => {
    const [oy, ox] = [Math.floor(pixel / out.w), pixel % out.w];
    for (let o = 0; o < layer.cout; o++) {
      let acc = layer.bias[o];
      for (let ky = 0; ky < layer.kh; ky++) {
        const iy = oy * layer.stride - layer.pad + ky;
        if (iy < 0 || iy >= x.h) continue;
        for (let kx = 0; kx < layer.kw; kx++) {
          const ix = ox * layer.stride - layer.pad + kx;
          if (ix < 0 || ix >= x.w) continue;
          const xAt = (iy * x.w + ix) * x.c;
          const wAt = ((o * layer.kh + ky) * layer.kw + kx) * layer.cin;
          for (let i = 0; i < layer.cin; i++) acc += (q[xAt + i] - x.zeroPoint) * layer.weight[wAt + i];
        }
      }
      const real = acc * layer.multiplier[o] * out.scale;
      values[k * layer.cout + o] = layer.relu ? Math.max(0, real) : real;
    }
  });
  return values;
}
