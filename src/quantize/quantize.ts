/**
 * FloatModel + per-tensor activation parameters -> QuantModel, in exactly the terms of the int8
 * arithmetic in docs/ARCHITECTURE.md.
 */
import type { FloatLayer, FloatModel, QuantLayer, QuantModel, QuantParams } from '../model/types.ts';

const BIAS_LIMIT = 2 ** 30;

/** Round to nearest, ties to even. */
export function rne(v: number): number {
  const r = Math.round(v); // ties go up; pull odd results of a tie back down to even
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

export function quantizeModel(float: FloatModel, tensorQuant: QuantParams[]): QuantModel {
  checkTensorQuant(float, tensorQuant);
  const tensors = float.tensors.map((shape, t) => ({ ...shape, ...tensorQuant[t] }));
  const scale = (t: number) => tensorQuant[t].scale;
  const layers = float.layers.map((layer): QuantLayer => {
    switch (layer.kind) {
      case 'conv': {
        const { weight, bias, weightScales } = quantizeWeights(layer, scale(layer.input));
        const multiplier = Float32Array.from(weightScales, (sw) => (scale(layer.input) * sw) / scale(layer.output));
        return { ...layer, weight, bias, multiplier };
      }
      case 'fc': {
        const { weight, bias, weightScales } = quantizeWeights(layer, scale(layer.input));
        const multiplier = Float32Array.from(weightScales, (sw) => scale(layer.input) * sw);
        return { ...layer, weight, bias, multiplier };
      }
      case 'add': {
        const [a, b] = layer.inputs;
        const sy = scale(layer.output);
        return { ...layer, multiplierA: Math.fround(scale(a) / sy), multiplierB: Math.fround(scale(b) / sy) };
      }
      case 'gap': {
        const { h, w } = float.tensors[layer.input];
        return { ...layer, multiplier: Math.fround(scale(layer.input) / (scale(layer.output) * h * w)) };
      }
      case 'affine': {
        const [sx, sy] = [scale(layer.input), scale(layer.output)];
        const multiplier = Float32Array.from(layer.scale, (s) => (sx * s) / sy);
        const offset = Float32Array.from(layer.shift, (b) => b / sy);
        const { scale: _s, shift: _b, ...geometry } = layer;
        return { ...geometry, multiplier, offset };
      }
      case 'maxpool':
      case 'avgpool':
        return layer;
    }
  });
  return {
    architecture: float.architecture,
    preprocessing: float.preprocessing,
    labels: float.labels,
    tensors,
    layers,
  };
}

/**
 * Symmetric per output channel: sw[o] = max|w[o]| / 127, so each non-zero channel uses the full
 * ±127; the bias is expressed in units of sx · sw[o], the accumulator's unit.
 */
export function quantizeWeights(
  layer: Extract<FloatLayer, { kind: 'conv' | 'fc' }>,
  sx: number,
): { weight: Int8Array; bias: Int32Array; weightScales: Float64Array } {
  const perChannel = layer.weight.length / layer.cout;
  const weight = new Int8Array(layer.weight.length);
  const bias = new Int32Array(layer.cout);
  const weightScales = new Float64Array(layer.cout);
  // Plain loops: a ResNet-50 has 25M weights, and per-value callbacks cost most of a second.
  for (let o = 0; o < layer.cout; o++) {
    const [start, end] = [o * perChannel, (o + 1) * perChannel];
    let maxAbs = 0;
    for (let i = start; i < end; i++) maxAbs = Math.max(maxAbs, Math.abs(layer.weight[i]));
    const sw = maxAbs > 0 ? maxAbs / 127 : 1;
    weightScales[o] = sw;
    for (let i = start; i < end; i++) weight[i] = clamp(rne(layer.weight[i] / sw), -127, 127);
    bias[o] = clamp(rne(layer.bias[o] / (sx * sw)), -BIAS_LIMIT, BIAS_LIMIT);
  }
  return { weight, bias, weightScales };
}

/** The arithmetic passes pooled uint8 values through unchanged (same scale) and reads fc logits as f32. */
function checkTensorQuant(float: FloatModel, tensorQuant: QuantParams[]): void {
  if (tensorQuant.length !== float.tensors.length) {
    throw new Error(`${tensorQuant.length} tensor parameters for ${float.tensors.length} tensors`);
  }
  for (const layer of float.layers) {
    const out = tensorQuant[layer.output];
    if (layer.kind === 'maxpool' || layer.kind === 'avgpool') {
      const input = tensorQuant[layer.input];
      if (out.scale !== input.scale || out.zeroPoint !== input.zeroPoint) {
        throw new Error(`${layer.name}: ${layer.kind} output must have its input's scale and zero point`);
      }
    }
    if (layer.kind === 'fc' && (out.scale !== 1 || out.zeroPoint !== 0)) {
      throw new Error(`${layer.name}: fc output must have scale 1 and zero point 0`);
    }
  }
}
