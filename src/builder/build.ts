/**
 * A complete test model from a seed and a few preprocessed photos: random torchvision-initialised
 * weights, BN statistics and activation ranges measured in one fp32 pass (the fp32 network is the
 * slow part), then int8 quantization.
 */
import type { FloatModel, QuantModel } from '../model/types.ts';
import { TensorRanges } from '../quantize/calibrate.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import { setBatchNormStats } from './bnstats.ts';
import type { ResnetOptions } from './resnet.ts';
import { resnetUnfolded } from './resnet.ts';

export interface BuildOptions extends ResnetOptions {
  /** Preprocessed NHWC inputs of the network's input shape. */
  calibration: Float32Array[];
}

export function buildTestModel({ calibration, ...resnet }: BuildOptions): { float: FloatModel; quant: QuantModel } {
  const net = resnetUnfolded(resnet);
  const ranges = new TensorRanges(net.model.tensors.length);
  // A tensor's BN is settled by the time it is observed, so its range is that of the final network.
  const float = setBatchNormStats(net, calibration, (t, batch) => ranges.observeBatch(t, batch));
  return { float, quant: quantizeModel(float, ranges.quantParams(float)) };
}
