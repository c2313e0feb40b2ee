/**
 * Statistics corrected after a lesion: BatchNorm re-estimation, with BN folded into the convs.
 * Removing a block changes what every later layer sees, so each later conv's per-channel value
 * before its ReLU drifts from what it was in the full network on the same photos. Layer by layer,
 * in execution order, each conv's per-channel mean (and, with `scale`, standard deviation) is
 * measured on the shortened network with the corrections before it already in place, and matched
 * to the full network's by a per-channel affine z' = a·z + b folded into the conv itself: its
 * multiplier times a, its int32 bias plus b in the bias's units. The result is a plain model,
 * run bit for bit alike everywhere. docs/ARCHITECTURE.md ("Lesions") says how it is measured.
 */

import { BlockLesionError } from '../errors.ts';
import { packWeights } from '../format/layout.ts';
import { writeModel } from '../format/writer.ts';
import { layerInputs, type QuantLayer, type QuantModel, type QuantTensor } from '../model/types.ts';
import { rne } from '../quantize/quantize.ts';
import { loadModel } from '../runtime/model.ts';
import { firstDifference } from './evaluate.ts';
import type { StudyPhoto } from './photos.ts';

type Conv = Extract<QuantLayer, { kind: 'conv' }>;

/** A conv's per-channel statistics before its ReLU, in real units. */
export interface ChannelStats {
  mean: Float64Array;
  std: Float64Array;
}

/** What is matched: the mean alone, or the mean and the standard deviation. */
export type Correction = 'mean' | 'mean, scale';

const BIAS_LIMIT = 2 ** 30;
/** Output pixels of a conv sampled per photo for its spread. */
const CONV_SAMPLES = 8;

/**
 * Each conv's statistics on `photos`, by layer name: the targets a shortened network is corrected
 * to (the spread only for `mean, scale`: sampling it is most of the cost).
 */
export async function convStatistics(
  model: QuantModel,
  photos: StudyPhoto[],
  correction: Correction,
): Promise<Map<string, ChannelStats>> {
  const sums = new Map<number, StatsSum>();
  const runtime = await loadModel(writeModel(model), { threads: 1 });
  try {
    const network = runtime.layers;
    photos.forEach((photo, p) => {
      network.setInput(photo.input);
      model.layers.forEach((layer, i) => {
        if (layer.kind === 'conv') {
          if (!sums.has(i)) sums.set(i, new StatsSum(layer.cout, correction));
          sums.get(i)!.add(layer, model.tensors, network.readTensor(layer.input), p);
        }
        network.runLayer(network.header.layers[i], i);
      });
    });
  } finally {
    runtime.dispose();
  }
  return new Map([...sums].map(([i, sum]) => [model.layers[i].name, sum.stats()]));
}

/**
 * `model` (a lesion of `full`) with every conv from its first change on whose name `targets`
 * holds corrected, in order, on `photos` (the photos the targets were measured on, in the same order).
 */
export async function corrected(
  full: QuantModel,
  model: QuantModel,
  targets: ReadonlyMap<string, ChannelStats>,
  photos: StudyPhoto[],
  correction: Correction,
): Promise<QuantModel> {
  if (photos.length === 0) throw new BlockLesionError('no photos to measure the statistics on');
  const from = firstDifference(full, model);
  const layers = [...model.layers];
  const last = layers.findLastIndex((layer) => layer.kind === 'conv' && targets.has(layer.name));
  if (last < from) return model;
  const lastRead = new Map<number, number>();
  layers.forEach((layer, i) => {
    for (const t of layerInputs(layer)) lastRead.set(t, i);
  });
  const runtime = await loadModel(writeModel(model), { threads: 1 });
  try {
    const network = runtime.layers;
    const states = photos.map((photo) => {
      network.setInput(photo.input);
      network.header.layers.slice(0, from).forEach((layer, i) => network.runLayer(layer, i));
      const before = [0, ...layers.slice(0, from).map((l) => l.output)];
      return new Map(before.filter((t) => lastRead.get(t)! >= from).map((t) => [t, network.readTensor(t)]));
    });
    for (let i = from; i <= last; i++) {
      const layer = layers[i];
      const target = layer.kind === 'conv' ? targets.get(layer.name) : undefined;
      if (layer.kind === 'conv' && target) {
        if (target.mean.length !== layer.cout)
          throw new BlockLesionError(
            `${layer.name}: ${target.mean.length} channels of statistics for ${layer.cout}; measured on another network?`,
          );
        if (correction === 'mean, scale' && target.std.length !== layer.cout)
          throw new BlockLesionError(
            `${layer.name}: its statistics hold no spread to match (measured for the mean alone)`,
          );
        const sum = new StatsSum(layer.cout, correction);
        states.forEach((state, p) => sum.add(layer, model.tensors, state.get(layer.input)!, p));
        layers[i] = matched(layer, sum.stats(), target, model.tensors[layer.output], correction);
        network.setParameters(i, packWeights(layers[i] as Conv, model.tensors[layer.input].zeroPoint));
      }
      for (const state of states) {
        for (const t of layerInputs(layer)) network.writeTensor(t, state.get(t)!);
        network.runLayer(network.header.layers[i], i);
        state.set(layer.output, network.readTensor(layer.output));
        for (const t of layerInputs(layer)) if (lastRead.get(t) === i) state.delete(t);
      }
    }
  } finally {
    runtime.dispose();
  }
  return { ...model, layers };
}

/** The conv with z' = a·z + b per channel, a and b taking `now` to `target`. */
function matched(layer: Conv, now: ChannelStats, target: ChannelStats, out: QuantTensor, correction: Correction): Conv {
  const multiplier = new Float32Array(layer.cout);
  const bias = new Int32Array(layer.cout);
  for (let o = 0; o < layer.cout; o++) {
    const a = correction === 'mean, scale' && now.std[o] > 0 && target.std[o] > 0 ? target.std[o] / now.std[o] : 1;
    const b = target.mean[o] - a * now.mean[o];
    multiplier[o] = layer.multiplier[o] * a;
    // z' = M'·s_y·(acc + bias) + b = M'·s_y·(acc + bias + b / (M'·s_y))
    const shift = multiplier[o] > 0 ? rne(b / (multiplier[o] * out.scale)) : 0;
    bias[o] = Math.max(-BIAS_LIMIT, Math.min(BIAS_LIMIT, layer.bias[o] + shift));
  }
  return { ...layer, multiplier, bias };
}

/**
 * A conv's statistics over photos: the mean exactly, over every output pixel (a conv is linear,
 * so it needs only the sums of the inputs each tap reads); the spread from the values at the
 * pixels convSamples picks (the weights in JavaScript are the slow part).
 */
class StatsSum {
  private readonly means: Float64Array;
  private readonly sampled: Float64Array;
  private readonly squares: Float64Array;
  private photos = 0;
  private samples = 0;

  constructor(
    private readonly channels: number,
    private readonly correction: Correction,
  ) {
    [this.means, this.sampled, this.squares] = [0, 1, 2].map(() => new Float64Array(channels));
  }

  add(layer: Conv, tensors: QuantTensor[], q: Uint8Array, photo: number): void {
    const mean = exactMean(layer, tensors, q);
    for (let o = 0; o < this.channels; o++) this.means[o] += mean[o];
    this.photos++;
    if (this.correction === 'mean') return;
    const values = convSamples(layer, tensors, q, photo);
    values.forEach((v, i) => {
      this.sampled[i % this.channels] += v;
      this.squares[i % this.channels] += v * v;
    });
    this.samples += values.length / this.channels;
  }

  stats(): ChannelStats {
    const mean = this.means.map((m) => m / this.photos);
    if (this.correction === 'mean') return { mean, std: new Float64Array(0) };
    const std = this.squares.map((s, o) => {
      const m = this.sampled[o] / this.samples;
      return Math.sqrt(Math.max(0, s / this.samples - m * m));
    });
    return { mean, std };
  }
}

/** The conv's mean value before its ReLU per channel, over all its output pixels, in real units. */
function exactMean(layer: Conv, tensors: QuantTensor[], q: Uint8Array): Float64Array {
  const [x, out] = [tensors[layer.input], tensors[layer.output]];
  const { kh, kw, cin, stride, pad } = layer;
  // Per tap and input channel, the sum of (q − zx) over the pixels that tap reads (padding reads zx).
  const taps = new Float64Array(kh * kw * cin);
  for (let ky = 0; ky < kh; ky++)
    for (let kx = 0; kx < kw; kx++) {
      const at = (ky * kw + kx) * cin;
      for (let oy = 0; oy < out.h; oy++) {
        const iy = oy * stride - pad + ky;
        if (iy < 0 || iy >= x.h) continue;
        for (let ox = 0; ox < out.w; ox++) {
          const ix = ox * stride - pad + kx;
          if (ix < 0 || ix >= x.w) continue;
          const from = (iy * x.w + ix) * x.c;
          for (let i = 0; i < cin; i++) taps[at + i] += q[from + i] - x.zeroPoint;
        }
      }
    }
  const perChannel = kh * kw * cin;
  const pixels = out.h * out.w;
  return Float64Array.from({ length: layer.cout }, (_, o) => {
    let acc = 0;
    for (let j = 0; j < perChannel; j++) acc += layer.weight[o * perChannel + j] * taps[j];
    return (acc / pixels + layer.bias[o]) * layer.multiplier[o] * out.scale;
  });
}

/**
 * A conv's value before its ReLU, acc·M·s_out (= acc·s_in·s_w), at CONV_SAMPLES output pixels
 * spread over the map and shifted per photo, pixel by pixel: [pixel][channel].
 */
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
  const { kh, kw, cin, cout, stride, pad, weight, bias, multiplier } = layer;
  // The pixel's receptive field as (q − zx), 0 in the padding: laid out as each filter is.
  const field = new Int32Array(kh * kw * cin);
  chosen.forEach((pixel, k) => {
    const [oy, ox] = [Math.floor(pixel / out.w), pixel % out.w];
    field.fill(0);
    for (let ky = 0; ky < kh; ky++) {
      const iy = oy * stride - pad + ky;
      if (iy < 0 || iy >= x.h) continue;
      for (let kx = 0; kx < kw; kx++) {
        const ix = ox * stride - pad + kx;
        if (ix < 0 || ix >= x.w) continue;
        const [from, to] = [(iy * x.w + ix) * x.c, (ky * kw + kx) * cin];
        for (let i = 0; i < cin; i++) field[to + i] = q[from + i] - x.zeroPoint;
      }
    }
    for (let o = 0, w = 0; o < cout; o++) {
      let acc = bias[o];
      for (let j = 0; j < field.length; j++, w++) acc += field[j] * weight[w];
      values[k * cout + o] = acc * multiplier[o] * out.scale;
    }
  });
  return values;
}
