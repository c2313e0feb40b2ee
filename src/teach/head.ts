/**
 * A taught head: an fc layer quantized for one base network's embedding tensor, its labels, and
 * optionally the probability below which the answer is `unknown`. It runs either in JavaScript on
 * the pooled uint8 tensor (Model.withHead) or as the fc record of a saved model: the same integer
 * sums and the same two f32 roundings as assembly/fc.ts, so the logits are the same bits.
 */

import { packWeights } from '../format/layout.ts';
import type { FloatLayer, HeadInfo, NetworkHeader, QuantTensor } from '../model/types.ts';
import { quantizeWeights } from '../quantize/quantize.ts';
import { embeddingTensor } from './embedding.ts';
import { TeachError } from './errors.ts';

export interface Head extends HeadInfo {
  labels: string[];
  /** int8 weights, row-major [class][embedding], symmetric per class. */
  weight: Int8Array;
  /** int32 biases in units of (embedding scale · weight scale). */
  bias: Int32Array;
  /** f32 per class: embedding scale · weight scale. */
  multiplier: Float32Array;
}

/** A linear classifier over dequantized embeddings: logits = weight · e + bias (weight row-major). */
export interface FloatHead {
  weight: Float64Array;
  bias: Float64Array;
}

/** Quantizes a float head for the embedding tensor it reads, as the converter quantizes an fc. */
export function quantizeHead(float: FloatHead, embedding: QuantTensor, labels: string[], info: HeadInfo): Head {
  const layer: Extract<FloatLayer, { kind: 'fc' }> = {
    kind: 'fc',
    name: 'head',
    input: 0,
    output: 1,
    cin: embedding.c,
    cout: labels.length,
    weight: Float32Array.from(float.weight),
    bias: Float32Array.from(float.bias),
  };
  const { weight, bias, weightScales } = quantizeWeights(layer, embedding.scale);
  const multiplier = Float32Array.from(weightScales, (sw) => embedding.scale * sw);
  return { ...info, labels, weight, bias, multiplier };
}

/** The head's logits for a pooled uint8 embedding with zero point `zx`: assembly/fc.ts's arithmetic. */
export function headLogits(head: Head, pooled: Uint8Array, zx: number): Float32Array {
  const cin = pooled.length;
  const logits = new Float32Array(head.labels.length);
  for (let o = 0; o < logits.length; o++) {
    let acc = head.bias[o];
    const row = o * cin;
    for (let i = 0; i < cin; i++) acc += (pooled[i] - zx) * head.weight[row + i];
    logits[o] = Math.fround(Math.fround(acc) * head.multiplier[o]);
  }
  return logits;
}

/** The base network's header with its fc replaced by the head's. */
export function headHeader(base: NetworkHeader, head: Head): NetworkHeader {
  const layers = base.layers.slice();
  const fc = layers[layers.length - 1];
  if (fc.kind !== 'fc') throw new TeachError(`the last layer "${fc.name}" is ${fc.kind}, not fc`);
  layers[layers.length - 1] = { ...fc, cout: head.labels.length };
  const tensors = base.tensors.map((t, id) => (id === fc.output ? { ...t, c: head.labels.length } : t));
  const info: HeadInfo = head.unknown === undefined ? { base: head.base } : { base: head.base, unknown: head.unknown };
  return { ...base, labels: head.labels, layers, tensors, head: info };
}

/** The head as an fc record payload (docs/FORMAT.md's kernel layout). */
export function headPayload(base: NetworkHeader, head: Head): Uint8Array {
  const embedding = base.tensors[embeddingTensor(base)];
  const layer = {
    kind: 'fc' as const,
    name: 'head',
    input: 0,
    output: 1,
    cin: embedding.c,
    cout: head.labels.length,
    weight: head.weight,
    bias: head.bias,
    multiplier: head.multiplier,
  };
  return packWeights(layer, embedding.zeroPoint);
}
