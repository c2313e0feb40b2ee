// The networks every benchmark runs (`npm run bench`, `npm run bench:browser`): our builder's seeded
// ResNet-18 or ResNet-50, written three ways into a folder: our .rnw file, fp32 ONNX as
// torch.onnx.export writes torchvision's, and int8 QDQ ONNX as onnxruntime's quantize_static writes
// it, with our file's activation parameters, so every runtime runs the same network.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeForBenchmark } from '../src/builder/bench-model.ts';
import { resnetFloat } from '../src/builder/resnet.ts';
import { encodeOnnxModel } from '../src/convert/onnx-proto.ts';
import { readModel } from '../src/format/reader.ts';
import { macs, outputTensor } from '../src/model/types.ts';
import { ActivationRanges, exportFolded, exportQdq } from '../test/helpers/onnx-export.ts';
import { benchInput, type PeerInput } from './peers/measure.ts';
import { load as loadOnnxRuntimeNode } from './peers/onnxruntime-node.ts';

export type BenchDepth = 18 | 50;

export interface BenchModels {
  depth: BenchDepth;
  /** "ResNet-18" */
  name: string;
  /** Paths of the three files. */
  rnw: string;
  fp32: string;
  int8: string;
  /** onnxruntime-node's fp32 logits on benchInput(): the reference the fp32 runs are checked against. */
  fp32Logits: number[];
  /** Conv and fc multiply-accumulates. */
  macs: number;
}

/** Writes resnet{depth}.rnw, resnet{depth}-fp32.onnx and resnet{depth}-int8-qdq.onnx into `dir`. */
export async function writeBenchModels(
  dir: string,
  depth: BenchDepth,
  input: PeerInput = benchInput(),
): Promise<BenchModels> {
  const paths = {
    rnw: join(dir, `resnet${depth}.rnw`),
    fp32: join(dir, `resnet${depth}-fp32.onnx`),
    int8: join(dir, `resnet${depth}-int8-qdq.onnx`),
  };
  const float = resnetFloat({ depth, seed: 1 });
  const rnw = quantizeForBenchmark(float);
  writeFileSync(paths.rnw, rnw);
  writeFileSync(paths.fp32, encodeOnnxModel(exportFolded(float, { batch: 1 })));
  const fp32Logits = Array.from(await (await loadOnnxRuntimeNode({ model: paths.fp32, threads: 1, input })).run());
  // quantize_static computes a scale and zero point from each tensor's min/max: these ranges give
  // back our file's (the scales rounded to f32, as ONNX stores them). Our fc writes f32 logits,
  // which a QDQ file quantizes as well: over the range they take here.
  const ranges = new ActivationRanges(float.tensors.length);
  readModel(rnw).header.tensors.forEach(({ scale, zeroPoint }, t) => {
    ranges.min[t] = -zeroPoint * scale;
    ranges.max[t] = (255 - zeroPoint) * scale;
  });
  const output = outputTensor(float);
  ranges.min[output] = Math.min(...fp32Logits);
  ranges.max[output] = Math.max(...fp32Logits);
  writeFileSync(paths.int8, encodeOnnxModel(exportQdq(float, ranges, { batch: 1 }).model));
  return { depth, name: `ResNet-${depth}`, ...paths, fp32Logits, macs: macs(float) };
}
