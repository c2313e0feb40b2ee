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
 * weights (an affine layer the identity map); its `relu` flag says a ReLU follows the BN.
 * batchNorms maps a conv's or affine's layer index to the BN that follows it.
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

export type FloatAffine = Extract<FloatLayer, { kind: 'affine' }>;

/** scale' = scale * factor, shift' = shift * factor + bnShift, per channel: BN after the affine map. */
export function foldAffine(layer: FloatAffine, bn: BatchNorm): FloatAffine {
  const scale = new Float32Array(layer.channels);
  const shift = new Float32Array(layer.channels);
  for (let c = 0; c < layer.channels; c++) {
    const { factor, shift: bnShift } = bnAffine(bn, c);
    scale[c] = layer.scale[c] * factor;
    shift[c] = layer.shift[c] * factor + bnShift;
  }
  return { ...layer, scale, shift };
}

/** The layer with the BN that follows it folded in (a conv's or an affine's); other layers as they are. */
export function foldLayer(layer: FloatLayer, bn: BatchNorm | undefined): FloatLayer {
  if (bn && layer.kind === 'conv') return foldConv(layer, bn);
  return bn && layer.kind === 'affine' ? foldAffine(layer, bn) : layer;
}

export function foldBatchNorms(net: UnfoldedNet): FloatModel {
  const layers = net.model.layers.map((layer, index) => foldLayer(layer, net.batchNorms.get(index)));
  return { ...net.model, layers };
}
