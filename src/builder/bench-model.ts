import { writeModel } from '../format/writer.ts';
import { type FloatModel, outputTensor } from '../model/types.ts';
import { rangeParams } from '../quantize/calibrate.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import { resnetFloat } from './resnet.ts';

/**
 * A ResNet-18 file for timing only: seeded random weights and fixed activation ranges, built in
 * about a second without photos. Latency does not depend on the weights' values.
 */
export function benchmarkModel(): Uint8Array {
  return quantizeForBenchmark(resnetFloat({ depth: 18, seed: 1 }));
}

/** A seeded float network (bench/models.ts builds ResNet-50 too) as benchmarkModel quantizes it: fixed ranges, no photos. */
export function quantizeForBenchmark(float: FloatModel): Uint8Array {
  const output = outputTensor(float);
  const ranges = float.tensors.map((_, t) =>
    t === output ? { scale: 1, zeroPoint: 0 } : rangeParams(t === 0 ? -2.2 : 0, 6),
  );
  return writeModel(quantizeModel(float, ranges));
}
