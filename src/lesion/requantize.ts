/**
 * Gives a tensor new quantization parameters (scale, zero point) and rewrites the layers around
 * it so every one computes the same real values as before, in the terms of the int8 arithmetic
 * (docs/ARCHITECTURE.md; the formulas are in src/model/types.ts):
 *   the layer that writes it  requantizes to the new scale (conv, affine: multiplier × s_old/s_new;
 *                             add, gap: their multipliers recomputed from the tensor scales,
 *                             exactly as the quantizer computes them);
 *   each layer that reads it  takes the new input scale (conv, fc: multiplier × s_new/s_old and the
 *                             int32 bias, in units of the input scale, × s_old/s_new rounded;
 *                             affine: multiplier × s_new/s_old; add, gap: recomputed).
 * Pools pass uint8 values through, so a pool's input and output move together.
 */
import type { QuantLayer, QuantModel, QuantParams, QuantTensor } from '../model/types.ts';
import { layerInputs } from '../model/types.ts';
import { rne } from '../quantize/quantize.ts';

const BIAS_LIMIT = 2 ** 30;

/** A copy of `model` whose tensor `t` (and the tensors a pool ties to it) has `params`. */
export function requantizeTensor(model: QuantModel, t: number, params: QuantParams): QuantModel {
  const group = tiedByPools(model, t);
  const before = model.tensors;
  const tensors = before.map((tensor, i): QuantTensor => (group.has(i) ? { ...tensor, ...params } : tensor));
  const layers = model.layers.map((layer) => {
    let out = layer;
    for (const input of layerInputs(layer).filter((i) => group.has(i)))
      out = readsRescaled(out, before[input].scale / params.scale, tensors);
    return group.has(layer.output) && !isPool(layer)
      ? writesRescaled(out, before[layer.output].scale / params.scale, tensors)
      : out;
  });
  return { ...model, tensors, layers };
}

function isPool(layer: QuantLayer): boolean {
  return layer.kind === 'maxpool' || layer.kind === 'avgpool';
}

/** `t` and every tensor a chain of pools connects to it: they share one scale and zero point. */
function tiedByPools(model: QuantModel, t: number): Set<number> {
  const group = new Set([t]);
  for (let grown = true; grown; ) {
    grown = false;
    for (const layer of model.layers.filter(isPool)) {
      const [input, output] = [layerInputs(layer)[0], layer.output];
      if (group.has(input) !== group.has(output)) {
        group.add(input).add(output);
        grown = true;
      }
    }
  }
  if (group.has(0))
    throw new RangeError('the network input keeps its quantization: its lookup table is derived from it');
  return group;
}

/** The layer with its output scale multiplied by 1/`ratio` (`ratio` = s_old / s_new). */
function writesRescaled(layer: QuantLayer, ratio: number, tensors: QuantTensor[]): QuantLayer {
  switch (layer.kind) {
    case 'conv':
      return { ...layer, multiplier: scaled(layer.multiplier, ratio) };
    case 'affine':
      return { ...layer, multiplier: scaled(layer.multiplier, ratio), offset: scaled(layer.offset, ratio) };
    case 'add':
    case 'gap':
      return withScaleMultipliers(layer, tensors);
    default:
      throw new RangeError(`${layer.name}: a ${layer.kind} output cannot be requantized`);
  }
}

/** The layer reading one input whose scale was multiplied by 1/`ratio` (`ratio` = s_old / s_new). */
function readsRescaled(layer: QuantLayer, ratio: number, tensors: QuantTensor[]): QuantLayer {
  switch (layer.kind) {
    case 'conv':
    case 'fc':
      return {
        ...layer,
        multiplier: scaled(layer.multiplier, 1 / ratio),
        bias: layer.bias.map((b) => Math.max(-BIAS_LIMIT, Math.min(BIAS_LIMIT, rne(b * ratio)))),
      };
    case 'affine':
      return { ...layer, multiplier: scaled(layer.multiplier, 1 / ratio) };
    case 'add':
    case 'gap':
      return withScaleMultipliers(layer, tensors);
    case 'maxpool':
    case 'avgpool':
      return layer;
  }
}

/** add: multiplierA = sa/sy, multiplierB = sb/sy; gap: sx/(sy·h·w), each rounded to f32 once. */
function withScaleMultipliers(layer: Extract<QuantLayer, { kind: 'add' | 'gap' }>, tensors: QuantTensor[]): QuantLayer {
  const sy = tensors[layer.output].scale;
  if (layer.kind === 'gap') {
    const x = tensors[layer.input];
    return { ...layer, multiplier: Math.fround(x.scale / (sy * x.h * x.w)) };
  }
  const [a, b] = layer.inputs;
  return { ...layer, multiplierA: Math.fround(tensors[a].scale / sy), multiplierB: Math.fround(tensors[b].scale / sy) };
}

function scaled(values: Float32Array, factor: number): Float32Array {
  return values.map((v) => v * factor);
}
