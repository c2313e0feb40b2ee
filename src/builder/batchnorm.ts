/**
 * BatchNorm as torchvision keeps it, and its folding into the preceding conv: our FloatModel has
 * no BN layers, so every BN must disappear into conv weight and bias before anything runs it.
 */
import type { FloatLayer, FloatModel } from '../model/types.ts';

export const BN_EPSILON = 1e-5;

export type FloatConv = Extract<FloatLayer, { kind: 'conv' }>;

/** Per output channel: y = gamma * (x - mean) / sqrt(variance + eps) + beta. */
export interface BatchNorm {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
}

/**
 * The network with its BatchNorms still separate. In `model`, a conv layer holds the raw conv
 * weights; its `relu` flag says a ReLU follows the BN. batchNorms maps a conv's layer index to the
 * BN that follows it.
 */
export interface UnfoldedNet {
  model: FloatModel;
  batchNorms: Map<number, BatchNorm>;
}

/** Per channel, BN(x) = x * factor + shift. */
export function bnAffine(bn: BatchNorm, channel: number): { factor: number; shift: number } {
  const factor = bn.gamma[channel] / Math.sqrt(bn.variance[channel] + BN_EPSILON);
  return { factor, shift: bn.beta[channel] - bn.mean[channel] * factor };
}

/** w' = w * factor, b' = b * factor + shift, per output channel. */
export function foldConv(layer: FloatConv, bn: BatchNorm): FloatConv {
  const weight = new Float32Array(layer.weight.length);
  const bias = new Float32Array(layer.cout);
  const perChannel = layer.weight.length / layer.cout;
  for (let o = 0; o < layer.cout; o++) {
    const { factor, shift } = bnAffine(bn, o);
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) weight[i] = layer.weight[i] * factor;
    bias[o] = layer.bias[o] * factor + shift;
  }
  return { ...layer, weight, bias };
}

export function foldBatchNorms(net: UnfoldedNet): FloatModel {
  const layers = net.model.layers.map((layer, index) => {
    const bn = net.batchNorms.get(index);
    return bn && layer.kind === 'conv' ? foldConv(layer, bn) : layer;
  });
  return { ...net.model, layers };
}
