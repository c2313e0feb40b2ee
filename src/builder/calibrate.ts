/**
 * Min/max calibration: each tensor's uint8 scale and zero point from the range it takes over the
 * calibration inputs. TensorRanges accepts tensors one at a time, so it can ride along on any pass
 * that computes them (runFloat's observer, or the bnstats pass via observeBatch).
 */
import type { FloatModel, QuantParams } from '../model/types.ts';
import { runFloat } from '../reference/fp32.ts';
import { rne } from './quantize.ts';

export class TensorRanges {
  // Starting at 0 puts 0 inside every range, so real zero (padding) is exactly representable and
  // a ReLU output, whose minimum is then 0, gets zero point 0.
  private readonly min: Float64Array;
  private readonly max: Float64Array;

  constructor(tensorCount: number) {
    this.min = new Float64Array(tensorCount);
    this.max = new Float64Array(tensorCount);
  }

  observe(tensor: number, data: Float32Array): void {
    let min = this.min[tensor];
    let max = this.max[tensor];
    for (let i = 0; i < data.length; i++) {
      min = Math.min(min, data[i]);
      max = Math.max(max, data[i]);
    }
    this.min[tensor] = min;
    this.max[tensor] = max;
  }

  observeBatch(tensor: number, batch: Float32Array[]): void {
    for (const data of batch) this.observe(tensor, data);
  }

  /**
   * The parameters follow the int8 arithmetic's constraints: maxpool passes uint8 values through,
   * so its output must share its input's parameters; the fc output holds f32 logits and carries
   * {scale: 1, zeroPoint: 0}. Layers run in order, so a maxpool's input is settled before it.
   */
  quantParams(model: FloatModel): QuantParams[] {
    const params = model.tensors.map((_, t) => rangeParams(this.min[t], this.max[t]));
    for (const layer of model.layers) {
      if (layer.kind === 'maxpool') params[layer.output] = { ...params[layer.input] };
      if (layer.kind === 'fc') params[layer.output] = { scale: 1, zeroPoint: 0 };
    }
    return params;
  }
}

/** scale = (max − min) / 255, zeroPoint = rne(−min / scale); a constant-zero tensor gets scale 1. */
export function rangeParams(min: number, max: number): QuantParams {
  const scale = (max - min) / 255 || 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, rne(-min / scale))) };
}

/** Runs the network over every input and calibrates every tensor. */
export function calibrate(model: FloatModel, inputs: Float32Array[]): QuantParams[] {
  const ranges = new TensorRanges(model.tensors.length);
  for (const input of inputs) runFloat(model, input, (t, data) => ranges.observe(t, data));
  return ranges.quantParams(model);
}
