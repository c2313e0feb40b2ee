/**
 * Activation calibration: each tensor's uint8 scale and zero point from the values it takes over
 * the calibration inputs. The observers accept tensors one at a time, so they can ride along on
 * any pass that computes them (runFloat's observer, or the bnstats pass via observeBatch).
 *   minmax      the whole observed range (TensorRanges).
 *   percentile  the range clipped to a percentile of the values at each end (TensorHistograms).
 *   entropy     the range clipped at TensorRT's KL-divergence threshold (TensorHistograms).
 * Both clipping methods trade a few saturated outliers for a finer step on the bulk of the values.
 */
import type { FloatModel, QuantParams } from '../model/types.ts';
import { runFloat } from '../reference/fp32.ts';
import { simdConvolve } from '../reference/fp32-simd.ts';
import type { Range } from './histogram.ts';
import { MagnitudeHistogram } from './histogram.ts';
import { rne } from './quantize.ts';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export interface CalibrationOptions {
  method?: CalibrationMethod;
  /** The percentile method keeps values up to this percentile (and down to 100 − it). */
  percentile?: number;
  /** Called after each input: the fp32 network takes seconds per image. */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_PERCENTILE = 99.999;

export class TensorRanges {
  // Starting at 0 puts 0 inside every range, so real zero (padding) is exactly representable and
  // a ReLU output, whose minimum is then 0, gets zero point 0.
  protected readonly min: Float64Array;
  protected readonly max: Float64Array;

  constructor(tensorCount: number) {
    this.min = new Float64Array(tensorCount);
    this.max = new Float64Array(tensorCount);
  }

  observe(tensor: number, data: Float32Array): void {
    let min = this.min[tensor];
    let max = this.max[tensor];
    // Math.min/max only where the bound moves (or x is NaN, which then sticks, as convert.ts expects):
    // called on every value, their branch for equal operands is mispredicted on a ReLU output's
    // random zeros. A −0 no longer replaces a 0 bound, which changes no parameter.
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      if (!(x >= min)) min = Math.min(min, x);
      if (!(x <= max)) max = Math.max(max, x);
    }
    this.min[tensor] = min;
    this.max[tensor] = max;
  }

  observeBatch(tensor: number, batch: Float32Array[]): void {
    for (const data of batch) this.observe(tensor, data);
  }

  /**
   * The parameters follow the int8 arithmetic's constraints: max and average pools pass uint8
   * values through (a mean stays in its input's range), so their output shares their input's parameters; the fc output holds f32 logits and carries
   * {scale: 1, zeroPoint: 0}. Layers run in order, so a maxpool's input is settled before it.
   * The network input keeps its whole range: it is small and known, and clipping the image hurts.
   */
  quantParams(model: FloatModel): QuantParams[] {
    const params = model.tensors.map((_, t) => {
      const { min, max } = t === 0 ? this.observedRange(t) : this.calibratedRange(t);
      return rangeParams(min, max);
    });
    for (const layer of model.layers) {
      if (layer.kind === 'maxpool' || layer.kind === 'avgpool') params[layer.output] = { ...params[layer.input] };
      if (layer.kind === 'fc') params[layer.output] = { scale: 1, zeroPoint: 0 };
    }
    return params;
  }

  protected observedRange(tensor: number): Range {
    return { min: this.min[tensor], max: this.max[tensor] };
  }

  /** The range the tensor is quantized over; min/max calibration takes all it has seen. */
  protected calibratedRange(tensor: number): Range {
    return this.observedRange(tensor);
  }
}

/** Min/max plus a fixed-size histogram per tensor (histogram.ts), from which `clip` picks the range. */
export class TensorHistograms extends TensorRanges {
  private readonly histograms: MagnitudeHistogram[];

  constructor(
    tensorCount: number,
    private readonly clip: (histogram: MagnitudeHistogram, observed: Range) => Range,
  ) {
    super(tensorCount);
    this.histograms = Array.from({ length: tensorCount }, () => new MagnitudeHistogram());
  }

  override observe(tensor: number, data: Float32Array): void {
    super.observe(tensor, data);
    // An infinity would double the bin width forever. A range that is not finite needs no histogram:
    // it is passed on as it is (calibratedRange), and convert.ts refuses the network.
    const magnitude = Math.max(-this.min[tensor], this.max[tensor]);
    if (Number.isFinite(magnitude)) this.histograms[tensor].add(data, magnitude);
  }

  protected override calibratedRange(tensor: number): Range {
    const observed = this.observedRange(tensor);
    if (!Number.isFinite(observed.min) || !Number.isFinite(observed.max)) return observed;
    return this.clip(this.histograms[tensor], observed);
  }
}

/** The observer that calibrates with the given method. */
export function tensorCalibrator(tensorCount: number, options: CalibrationOptions = {}): TensorRanges {
  const { method = 'minmax', percentile = DEFAULT_PERCENTILE } = options;
  switch (method) {
    case 'minmax':
      return new TensorRanges(tensorCount);
    case 'percentile':
      if (!(percentile > 0 && percentile <= 100))
        throw new RangeError(`percentile must be in (0, 100], got ${percentile}`);
      return new TensorHistograms(tensorCount, (histogram, observed) =>
        histogram.percentileRange(observed, percentile),
      );
    case 'entropy':
      return new TensorHistograms(tensorCount, (histogram, observed) => histogram.entropyRange(observed));
    default:
      throw new RangeError(`unknown calibration method ${JSON.stringify(method)}`);
  }
}

/** scale = (max − min) / 255, zeroPoint = rne(−min / scale); a constant-zero tensor gets scale 1. */
export function rangeParams(min: number, max: number): QuantParams {
  const scale = (max - min) / 255 || 1;
  return { scale, zeroPoint: Math.min(255, Math.max(0, rne(-min / scale))) };
}

/**
 * Runs the network over every input once and calibrates every tensor (min/max by default). The
 * convs run in wasm SIMD, computing the reference's floats exactly (fp32-simd.ts).
 * Memory stays bounded: one image's activations plus, per tensor, two numbers or a histogram.
 */
export function calibrate(model: FloatModel, inputs: Float32Array[], options: CalibrationOptions = {}): QuantParams[] {
  const calibrator = tensorCalibrator(model.tensors.length, options);
  const convolve = simdConvolve();
  inputs.forEach((input, index) => {
    runFloat(model, input, (t, data) => calibrator.observe(t, data), convolve);
    options.onProgress?.(index + 1, inputs.length);
  });
  return calibrator.quantParams(model);
}
