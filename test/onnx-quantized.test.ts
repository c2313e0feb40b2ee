// Pre-quantized ONNX import, with onnxruntime-node as the oracle. A ResNet-18 (seeded weights,
// BN statistics and activation ranges measured on photos) is written as onnxruntime's
// quantize_static writes it, QDQ (with and without the ReLU it usually removes) and QOperator;
// we import it keeping its scales, zero points, int8 weights and int32 biases, and run both
// runtimes on the same uint8 inputs. Our logits must follow onnxruntime's to within its output
// quantization.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setBatchNormStats } from '../src/builder/bnstats.ts';
import { imagenetPreprocessing, resnetFloat, resnetUnfolded } from '../src/builder/resnet.ts';
import { importOnnx } from '../src/convert/onnx.ts';
import type { OnnxModelInit } from '../src/convert/onnx-proto.ts';
import { encodeOnnxModel } from '../src/convert/onnx-proto.ts';
import { writeModel } from '../src/format/writer.ts';
import { preprocessFloat, preprocessQuantized } from '../src/image/preprocess.ts';
import type { QuantModel } from '../src/model/types.ts';
import { loadModel } from '../src/runtime/model.ts';
import { argmax } from './helpers/metrics.ts';
import type { QuantizedExport } from './helpers/onnx-export.ts';
import { ActivationRanges, exportQdq, exportQOperator, importError, runOnnxRuntime } from './helpers/onnx-export.ts';
import { photoSplit } from './helpers/photos.ts';

/**
 * Units of onnxruntime's output quantization. Measured: at most 0.50 (its rounding of the logits
 * to uint8; every activation agrees); one unit leaves room for a tie rounded the other way.
 */
const MAX_DIFFERENCE = 1;
const MAX_MEAN_DIFFERENCE = 0.5;
/** Where onnxruntime's top-1 leads by more than this many units, ours must be the same class. */
const CLEAR_LEAD = 2;

const photos = photoSplit(16, 20);
const preprocessing = imagenetPreprocessing(224);
const net = resnetUnfolded({ depth: 18, seed: 11 });
const ranges = new ActivationRanges(net.model.tensors.length);
const float = setBatchNormStats(
  net,
  photos.calibration.map((p) => preprocessFloat(p.image, preprocessing)),
  (t, batch) => ranges.observeBatch(t, batch),
);
const formats: [string, () => QuantizedExport][] = [
  ['QDQ', () => exportQdq(float, ranges)],
  ['QDQ with the ReLUs kept', () => exportQdq(float, ranges, { keepRelu: true })],
  ['QOperator', () => exportQOperator(float, ranges)],
];
for (const [format, write] of formats) {
  test(`ResNet-18 ${format}: our logits follow onnxruntime's on 20 views of photos`, async () => {
    const exported = write();
    const onnx = encodeOnnxModel(exported.model);
    const imported = importOnnx(onnx, `resnet18-${format}.onnx`);
    if (imported.kind !== 'quantized') throw new Error(`imported as ${imported.kind}`);
    assertKeepsParameters(imported.model, exported);
    const model = await loadModel(writeModel(imported.model));
    const input = imported.model.tensors[0];
    const quantized = photos.test.map((p) => preprocessQuantized(p.image, imported.model.preprocessing, input));
    // The real values our uint8 inputs stand for: onnxruntime's QuantizeLinear gives back exactly those bytes.
    const real = quantized.map((q) => Float32Array.from(q, (v) => (v - input.zeroPoint) * input.scale));
    const theirs = await runOnnxRuntime(onnx, real, input);
    const ours = quantized.map((q) => model.run(q));
    compareLogits(format, ours, theirs, exported.params[exported.params.length - 1]);
  });
}

/** Every activation keeps onnxruntime's scale and zero point (the logits are ours: f32). */
function assertKeepsParameters(model: QuantModel, exported: QuantizedExport): void {
  model.tensors
    .slice(0, -1)
    .forEach((t, i) => assert.equal({ scale: t.scale, zeroPoint: t.zeroPoint }, exported.params[i], `tensor ${i}`));
}

/**
 * onnxruntime quantizes its logits to uint8 (`output`); ours stay f32. Where its logit sits at 0
 * or 255 it was clipped (a photo outside the calibration range), so only unclipped logits are
 * compared value by value.
 */
function compareLogits(
  format: string,
  ours: Float32Array[],
  theirs: Float32Array[],
  output: { scale: number; zeroPoint: number },
): void {
  const unit = output.scale;
  const clipped = (x: number) => {
    const q = Math.round(x / unit) + output.zeroPoint;
    return q <= 0 || q >= 255;
  };
  const differences = ours.flatMap((v, n) =>
    Array.from(v, (x, i) => (clipped(theirs[n][i]) ? 0 : Math.abs(x - theirs[n][i]) / unit)),
  );
  const max = Math.max(...differences);
  const mean = differences.reduce((s, d) => s + d, 0) / differences.length;
  const clear = theirs.filter((v) => lead(v) > CLEAR_LEAD * unit);
  const agreeing = clear.filter((v) => argmax(v) === argmax(ours[theirs.indexOf(v)]));
  console.log(
    `onnx-quantized: ${format}: |ours − onnxruntime| max ${max.toFixed(2)}, mean ${mean.toFixed(3)} units of ${unit.toPrecision(4)}; ` +
      `same top-1 on ${agreeing.length}/${clear.length} photos with a clear lead (${ours.filter((v, n) => argmax(v) === argmax(theirs[n])).length}/${ours.length} in all)`,
  );
  assert.ok(max <= MAX_DIFFERENCE, `max difference ${max} units`);
  assert.ok(mean <= MAX_MEAN_DIFFERENCE, `mean difference ${mean} units`);
  assert.is(agreeing.length, clear.length, 'top-1 differs where onnxruntime leads clearly');
}

/** How far the top logit leads the second. */
function lead(v: Float32Array): number {
  const [first, second] = [...v].sort((a, b) => b - a);
  return first - second;
}

// ---- quantized files we cannot run ----

type Graph = NonNullable<OnnxModelInit['graph']>;

const TINY = resnetFloat({ depth: 18, seed: 5, numClasses: 10, inputSize: 32 });
const TINY_RANGES = (() => {
  const ranges = new ActivationRanges(TINY.tensors.length);
  TINY.tensors.forEach((_, t) => ranges.observeBatch(t, [Float32Array.of(-4, 4)]));
  return ranges;
})();

function tinyQdq(edit: (graph: Graph) => void): Uint8Array {
  const { model } = exportQdq(TINY, TINY_RANGES);
  edit(model.graph!);
  return encodeOnnxModel(model);
}

function initializer(graph: Graph, name: string) {
  return graph.initializer!.find((t) => t.name === name)!;
}

const REFUSALS: { what: string; edit: (graph: Graph) => void; node: string; message: RegExp }[] = [
  {
    what: 'asymmetric weights (zero point ≠ 0)',
    edit: (graph) => (initializer(graph, 'onnx::Conv_1_zero_point').int32_data![0] = 3),
    node: 'onnx::Conv_1_quantized_DequantizeLinear',
    message: /\(DequantizeLinear\): asymmetric weights/,
  },
  {
    what: 'int8 activations',
    edit: (graph) => Object.assign(initializer(graph, 'input_zero_point'), { data_type: 3 }),
    node: 'input_QuantizeLinear',
    message: /\(QuantizeLinear\): its zero point \(uint8 activations only\) "input_zero_point" is int8/,
  },
  {
    what: 'a DequantizeLinear with other parameters than its QuantizeLinear (requantization)',
    edit: (graph) => {
      const dq = graph.node!.find((n) => n.name === '/conv1/Conv_output_0_DequantizeLinear')!;
      graph.initializer!.push({
        ...initializer(graph, '/conv1/Conv_output_0_scale'),
        name: 'other_scale',
        float_data: [0.5],
      });
      dq.input![1] = 'other_scale';
    },
    node: '/conv1/Conv_output_0_DequantizeLinear',
    message: /requantization is not supported/,
  },
];

for (const { what, edit, node, message } of REFUSALS) {
  test(`quantized file refused before anything is written: ${what}`, () => {
    const error = importError(tinyQdq(edit), 'model.onnx');
    assert.is(error.node, node);
    assert.match(error.message, message);
  });
}

test.run();
