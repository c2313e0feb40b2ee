/**
 * Per-channel statistics correction after dropped blocks: the int8 form of re-estimating batch
 * normalization. Every conv after the first dropped block was trained to see the full network's
 * activations; without the block its output channels drift in mean and spread. Each channel's
 * value before ReLU is shifted and scaled so that its mean and standard deviation on the photos
 * match the full network's there (the same photos, the same sampled pixels), folded into the
 * conv's per-channel requantization multiplier and int32 bias:
 *   real = acc·M·s_out,  wanted a·real + b  →  M' = a·M,  bias' = bias + b / (M'·s_out).
 * A channel corrected changes what the next convs see, so the statistics are measured again and
 * the correction composed, `passes` times. The output ranges are left for recalibrate.ts.
 */

import { writeModel } from '../format/writer.ts';
import type { QuantLayer, QuantModel } from '../model/types.ts';
import { rne } from '../quantize/quantize.ts';
import { loadModel } from '../runtime/model.ts';
import type { StudyPhoto } from './photos.ts';
import { convSamples } from './recalibrate.ts';

type Conv = Extract<QuantLayer, { kind: 'conv' }>;

interface Moments {
  mean: Float64Array;
  std: Float64Array;
}

const BIAS_LIMIT = 2 ** 30;
/** Bounds on a channel's scale factor: a channel that (nearly) died is not blown up. */
const MAX_FACTOR = 4;

/** `shortened` with the convs from layer `from` on corrected towards `full`'s channel statistics on `photos`. */
export async function correctStatistics(
  full: QuantModel,
  shortened: QuantModel,
  from: number,
  photos: StudyPhoto[],
  passes = 2,
): Promise<QuantModel> {
  const names = new Set(shortened.layers.slice(from).flatMap((l) => (l.kind === 'conv' ? [l.name] : [])));
  const target = await convMoments(full, names, photos);
  let model = shortened;
  for (let pass = 0; pass < passes; pass++) {
    const now = await convMoments(model, names, photos);
    const layers = model.layers.map((layer) =>
      layer.kind === 'conv' && names.has(layer.name)
        ? corrected(layer, now.get(layer.name)!, target.get(layer.name)!, model.tensors[layer.output].scale)
        : layer,
    );
    model = { ...model, layers };
  }
  return model;
}

/** Each named conv's per-channel mean and standard deviation before its ReLU, at sampled pixels of each photo. */
async function convMoments(model: QuantModel, names: Set<string>, photos: StudyPhoto[]): Promise<Map<string, Moments>> {
  const sums = new Map<string, { sum: Float64Array; squares: Float64Array; count: number }>();
  const runtime = await loadModel(writeModel(model), { threads: 1 });
  try {
    const network = runtime.layers;
    photos.forEach((photo, p) => {
      network.setInput(photo.input);
      model.layers.forEach((layer, i) => {
        network.runLayer(network.header.layers[i], i);
        if (layer.kind !== 'conv' || !names.has(layer.name)) return;
        const values = convSamples(layer, model.tensors, network.readTensor(layer.input), p, false);
        let s = sums.get(layer.name);
        if (!s) {
          s = { sum: new Float64Array(layer.cout), squares: new Float64Array(layer.cout), count: 0 };
          sums.set(layer.name, s);
        }
        values.forEach((v, k) => {
          s.sum[k % layer.cout] += v;
          s.squares[k % layer.cout] += v * v;
        });
        s.count += values.length / layer.cout;
      });
    });
  } finally {
    runtime.dispose();
  }
  return new Map(
    [...sums].map(([name, { sum, squares, count }]) => {
      const mean = sum.map((s) => s / count);
      const std = squares.map((q, c) => Math.sqrt(Math.max(0, q / count - mean[c] * mean[c])));
      return [name, { mean, std }];
    }),
  );
}

function corrected(layer: Conv, now: Moments, target: Moments, outScale: number): Conv {
  const factor = now.std.map((s, c) =>
    s > 0 && target.std[c] > 0 ? Math.min(MAX_FACTOR, Math.max(1 / MAX_FACTOR, target.std[c] / s)) : 1,
  );
  const multiplier = layer.multiplier.map((m, c) => m * factor[c]);
  const bias = layer.bias.map((b, c) => {
    const shift = target.mean[c] - factor[c] * now.mean[c];
    return Math.max(-BIAS_LIMIT, Math.min(BIAS_LIMIT, rne(b + shift / (multiplier[c] * outScale))));
  });
  return { ...layer, multiplier, bias };
}
