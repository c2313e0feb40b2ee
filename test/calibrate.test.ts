import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from '../src/builder/random.ts';
import { imagenetPreprocessing, resnetFloat } from '../src/builder/resnet.ts';
import type { FloatModel, QuantParams } from '../src/model/types.ts';
import type { CalibrationMethod, CalibrationOptions } from '../src/quantize/calibrate.ts';
import { calibrate, rangeParams, tensorCalibrator } from '../src/quantize/calibrate.ts';
import type { Range } from '../src/quantize/histogram.ts';
import { MagnitudeHistogram } from '../src/quantize/histogram.ts';
import { quantizeModel } from '../src/quantize/quantize.ts';

const METHODS: CalibrationMethod[] = ['minmax', 'percentile', 'entropy'];

/** The real range a tensor's uint8 grid covers. */
const gridRange = ({ scale, zeroPoint }: QuantParams): Range => ({
  min: -zeroPoint * scale,
  max: (255 - zeroPoint) * scale,
});

function normalImages(seed: number, count: number, values: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length: values }, () => random.normal(0, 1)));
}

// ---- synthetic distributions: a Gaussian body with a few huge outliers ----

const SIZE = 256;

/**
 * input (SIZE x SIZE x 2) → identity conv (signed copy of the input, tensor 1) → identity conv +
 * ReLU (tensor 2) → maxpool (3) → gap (4) → fc (5).
 */
function identityModel(): FloatModel {
  const identity = () => Float32Array.of(1, 0, 0, 1);
  const conv = (input: number, relu: boolean) =>
    ({
      kind: 'conv',
      name: `c${input}`,
      input,
      output: input + 1,
      kh: 1,
      kw: 1,
      stride: 1,
      pad: 0,
      cin: 2,
      cout: 2,
      relu,
      weight: identity(),
      bias: new Float32Array(2),
    }) as const;
  const half = SIZE / 2;
  return {
    architecture: 'test',
    preprocessing: imagenetPreprocessing(SIZE),
    labels: ['a', 'b'],
    tensors: [
      { h: SIZE, w: SIZE, c: 2 },
      { h: SIZE, w: SIZE, c: 2 },
      { h: SIZE, w: SIZE, c: 2 },
      { h: half, w: half, c: 2 },
      { h: 1, w: 1, c: 2 },
      { h: 1, w: 1, c: 2 },
    ],
    layers: [
      conv(0, false),
      conv(1, true),
      { kind: 'maxpool', name: 'pool', input: 2, output: 3, k: 2, stride: 2, pad: 0 },
      { kind: 'gap', name: 'gap', input: 3, output: 4 },
      { kind: 'fc', name: 'fc', input: 4, output: 5, cin: 2, cout: 2, weight: identity(), bias: new Float32Array(2) },
    ],
  };
}

/** 8 images, 1M values of N(0, 1) in all, with 4 values at +50 and 4 at −40. */
function gaussianWithOutliers(): Float32Array[] {
  const inputs = normalImages(1, 8, SIZE * SIZE * 2);
  inputs.slice(0, 4).forEach((input, i) => {
    input[100 * i] = 50;
    input[100 * i + 1] = -40;
  });
  return inputs;
}

const synthetic = { model: identityModel(), inputs: gaussianWithOutliers() };
const syntheticParams = new Map(
  METHODS.map((method) => [method, calibrate(synthetic.model, synthetic.inputs, { method })]),
);

test('minmax on the synthetic tensors spans the outliers', () => {
  const params = syntheticParams.get('minmax')!;
  assert.equal(params[1], rangeParams(-40, 50));
  assert.equal(params[2], rangeParams(0, 50));
});

for (const method of ['percentile', 'entropy'] as const) {
  test(`${method}: much tighter than minmax, still holding the Gaussian body`, () => {
    const params = syntheticParams.get(method)!;
    const minmax = syntheticParams.get('minmax')!;
    const signed = gridRange(params[1]);
    assert.ok(signed.min < -3.5 && signed.max > 3.5, `${method} signed range ${JSON.stringify(signed)} cuts the body`);
    assert.ok(params[1].scale < minmax[1].scale / 5, `${method} scale ${params[1].scale} vs minmax ${minmax[1].scale}`);
    const relu = gridRange(params[2]);
    assert.ok(relu.max > 3.5 && params[2].scale < minmax[2].scale / 5, `${method} ReLU range ${JSON.stringify(relu)}`);
  });

  test(`${method}: ReLU output keeps zero point 0; maxpool shares, fc is 1/0, the input stays minmax`, () => {
    const params = syntheticParams.get(method)!;
    assert.is(params[2].zeroPoint, 0);
    assert.equal(params[3], params[2]);
    assert.equal(params[5], { scale: 1, zeroPoint: 0 });
    assert.equal(params[0], syntheticParams.get('minmax')![0]);
  });
}

// ---- the histogram on its own ----

function histogramOf(...chunks: Float32Array[]): { histogram: MagnitudeHistogram; observed: Range } {
  const histogram = new MagnitudeHistogram();
  const observed = { min: 0, max: 0 };
  for (const chunk of chunks) {
    for (const v of chunk) [observed.min, observed.max] = [Math.min(observed.min, v), Math.max(observed.max, v)];
    histogram.add(chunk, Math.max(-observed.min, observed.max));
  }
  return { histogram, observed };
}

test('percentile by hand: ±1..±1000 at the 99th percentile', () => {
  const values = Float32Array.from({ length: 2000 }, (_, i) => (i < 1000 ? i + 1 : -(i - 999)));
  const { histogram, observed } = histogramOf(values);
  // 1% of 2000 = 20 values may lie beyond each end: 981..1000. Bins are 0.5 wide (1000 < 2048 · 0.5),
  // so the edge is the top of 980's bin.
  assert.equal(histogram.percentileRange(observed, 99), { min: -980.5, max: 980.5 });
  assert.equal(histogram.percentileRange(observed, 100), observed);
});

test('entropy keeps the whole range of a uniform distribution: clipping gains nothing', () => {
  const random = seededRandom(3);
  const uniform = Float32Array.from({ length: 1 << 18 }, () => random.uniform(0, 1));
  const { histogram, observed } = histogramOf(uniform);
  assert.equal(histogram.entropyRange(observed), observed);
});

test('growing the bins as larger values arrive counts exactly as binning all at once', () => {
  const [small, large] = normalImages(4, 2, 50_000);
  large.forEach((v, i) => (large[i] = v * 1000));
  const all = new Float32Array([...small, ...large]);
  const ranges = ({ histogram, observed }: ReturnType<typeof histogramOf>) => [
    histogram.percentileRange(observed, 99.9),
    histogram.entropyRange(observed),
  ];
  const expected = ranges(histogramOf(all));
  assert.equal(ranges(histogramOf(small, large)), expected);
  assert.equal(ranges(histogramOf(large, small)), expected);
});

// ---- a small random ResNet ----

const resnet = resnetFloat({ depth: 18, seed: 5, inputSize: 32, numClasses: 10 });
const resnetInputs = normalImages(6, 6, 32 * 32 * 3);

test('all three methods give valid parameters on a random ResNet-18', () => {
  const minmax = calibrate(resnet, resnetInputs);
  for (const method of METHODS) {
    // 6 small images hold too few values for the default 99.999th percentile to clip anything.
    const params = calibrate(resnet, resnetInputs, { method, percentile: 99.9 });
    assert.ok(
      params.every(
        (p) =>
          p.scale > 0 &&
          Number.isFinite(p.scale) &&
          Number.isInteger(p.zeroPoint) &&
          p.zeroPoint >= 0 &&
          p.zeroPoint <= 255,
      ),
      method,
    );
    for (const layer of resnet.layers) {
      if ((layer.kind === 'conv' || layer.kind === 'add') && layer.relu)
        assert.is(params[layer.output].zeroPoint, 0, `${method} ${layer.name}`);
      if (layer.kind === 'maxpool') assert.equal(params[layer.output], params[layer.input]);
      if (layer.kind === 'fc') assert.equal(params[layer.output], { scale: 1, zeroPoint: 0 });
    }
    // Clipping only narrows: every grid lies inside the minmax grid (up to zero-point rounding).
    params.forEach((p, t) => assert.ok(p.scale <= minmax[t].scale * (1 + 1e-12), `${method} tensor ${t}`));
    const narrowed = params.filter((p, t) => p.scale < 0.95 * minmax[t].scale).length;
    assert.ok(method === 'minmax' || narrowed >= 5, `${method} narrowed only ${narrowed} tensors`);
    quantizeModel(resnet, params);
  }
});

test('a percentile of 100 is minmax', () => {
  assert.equal(
    calibrate(resnet, resnetInputs, { method: 'percentile', percentile: 100 }),
    calibrate(resnet, resnetInputs),
  );
});

test('deterministic: the same inputs, in any order, give the same parameters', () => {
  for (const method of METHODS) {
    const params = calibrate(resnet, resnetInputs, { method });
    assert.equal(calibrate(resnet, resnetInputs, { method }), params, method);
    assert.equal(calibrate(resnet, [...resnetInputs].reverse(), { method }), params, `${method}, reversed`);
  }
});

test('onProgress reports each image once', () => {
  const inputs = resnetInputs.slice(0, 3);
  for (const method of METHODS) {
    const calls: [number, number][] = [];
    calibrate(resnet, inputs, { method, onProgress: (done, total) => calls.push([done, total]) });
    assert.equal(
      calls,
      [
        [1, 3],
        [2, 3],
        [3, 3],
      ],
      method,
    );
  }
});

test('an infinity or a NaN gives parameters that are not finite, which convert refuses', () => {
  const model = { tensors: [{}, {}], layers: [] } as unknown as FloatModel;
  for (const method of ['minmax', 'percentile', 'entropy'] as const)
    for (const bad of [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN]) {
      const calibrator = tensorCalibrator(2, { method });
      calibrator.observe(1, Float32Array.of(0.5, -2, 3));
      calibrator.observe(1, Float32Array.of(1, bad, 0));
      const { scale, zeroPoint } = calibrator.quantParams(model)[1];
      assert.not.ok(Number.isFinite(scale) && Number.isFinite(zeroPoint), `${method} with ${bad}`);
    }
});

test('bad options are refused', () => {
  const refuse = (options: CalibrationOptions) =>
    assert.throws(() => calibrate(resnet, resnetInputs, options), /percentile|method/);
  for (const percentile of [0, -1, 100.5, NaN]) refuse({ method: 'percentile', percentile });
  refuse({ method: 'kl' as CalibrationMethod });
});

test.run();
