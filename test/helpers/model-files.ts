// Model files for the loader tests, built in memory in well under a second.

import { mulberry32 } from '../../src/builder/random.ts';
import { imagenetPreprocessing, resnetFloat } from '../../src/builder/resnet.ts';
import { writeModel } from '../../src/format/writer.ts';
import { type FloatLayer, type FloatModel, outputTensor, outSize, type Shape } from '../../src/model/types.ts';
import { rangeParams } from '../../src/quantize/calibrate.ts';
import { quantizeModel } from '../../src/quantize/quantize.ts';

/** Every tensor gets the same activation range (so a maxpool keeps its input's), the logits scale 1. */
function quantizeFixed(float: FloatModel): Uint8Array {
  const out = outputTensor(float);
  const params = float.tensors.map((_, t) =>
    t === out ? { scale: 1, zeroPoint: 0 } : rangeParams(t === 0 ? -2.2 : 0, 6),
  );
  return writeModel(quantizeModel(float, params));
}

/** ResNet-18's 11.7 MB of parameters (64x64 input, 10 classes): a realistic file to stream. */
export function resnet18File(): Uint8Array {
  return quantizeFixed(resnetFloat({ depth: 18, seed: 3, inputSize: 64, numClasses: 10 }));
}

/**
 * A tiny residual network on 32x32 input (about 6 KB) with one layer of each kind and each conv
 * path: a patch-layout stem, maxpool, two Winograd convs and an add, a direct 1x1 stride-2 conv,
 * gap and fc.
 */
export function tinyModelFile(): Uint8Array {
  const random = mulberry32(7);
  const weights = (n: number) => Float32Array.from({ length: n }, () => (random() - 0.5) * 0.6);
  const tensors: Shape[] = [{ h: 32, w: 32, c: 3 }];
  const layers: FloatLayer[] = [];
  const add = (shape: Shape) => tensors.push(shape) - 1;
  const conv = (name: string, input: number, cout: number, k: number, stride: number, relu: boolean) => {
    const x = tensors[input];
    const pad = Math.floor(k / 2);
    const output = add({ h: outSize(x.h, k, stride, pad), w: outSize(x.w, k, stride, pad), c: cout });
    layers.push({
      kind: 'conv',
      name,
      input,
      output,
      kh: k,
      kw: k,
      stride,
      pad,
      cin: x.c,
      cout,
      relu,
      weight: weights(cout * k * k * x.c),
      bias: weights(cout),
    });
    return output;
  };
  const stem = conv('conv1', 0, 8, 3, 2, true);
  const pooled = add({ h: 8, w: 8, c: 8 });
  layers.push({ kind: 'maxpool', name: 'maxpool', input: stem, output: pooled, k: 3, stride: 2, pad: 1 });
  const branch = conv('block.conv2', conv('block.conv1', pooled, 8, 3, 1, true), 8, 3, 1, false);
  const sum = add({ h: 8, w: 8, c: 8 });
  layers.push({ kind: 'add', name: 'block.add', inputs: [pooled, branch], output: sum, relu: true });
  const down = conv('down', sum, 16, 1, 2, true);
  const pooledAll = add({ h: 1, w: 1, c: 16 });
  layers.push({ kind: 'gap', name: 'avgpool', input: down, output: pooledAll });
  const logits = add({ h: 1, w: 1, c: 10 });
  layers.push({
    kind: 'fc',
    name: 'fc',
    input: pooledAll,
    output: logits,
    cin: 16,
    cout: 10,
    weight: weights(160),
    bias: weights(10),
  });
  return quantizeFixed({
    architecture: 'tiny',
    preprocessing: imagenetPreprocessing(32),
    labels: Array.from({ length: 10 }, (_, i) => `label ${i}`),
    tensors,
    layers,
  });
}
