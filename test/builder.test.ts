import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BatchNorm, FloatConv } from '../src/builder/batchnorm.ts';
import { BN_EPSILON, foldConv } from '../src/builder/batchnorm.ts';
import { setBatchNormStats } from '../src/builder/bnstats.ts';
import { buildTestModel } from '../src/builder/build.ts';
import type { Random } from '../src/builder/random.ts';
import { randomArray, seededRandom } from '../src/builder/random.ts';
import type { ResnetDepth } from '../src/builder/resnet.ts';
import { imagenetPreprocessing, resnetFloat, resnetUnfolded } from '../src/builder/resnet.ts';
import type { FloatLayer, FloatModel, QuantModel, QuantParams, Shape } from '../src/model/types.ts';
import { layerInputs, macs } from '../src/model/types.ts';
import { calibrate, rangeParams } from '../src/quantize/calibrate.ts';
import { quantizeModel, rne } from '../src/quantize/quantize.ts';
import { runFloat, runLayer } from '../src/reference/fp32.ts';
import { convGeometry } from './helpers/conv-layer.ts';

// ---- synthetic photos: smooth colour fields with a few waves, ImageNet-normalised ----

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

function smoothImage(random: Random, size: number): Float32Array {
  const base = [0, 1, 2].map(() => random.uniform(0.1, 0.9));
  const waves = Array.from({ length: 3 }, () => ({
    fx: random.normal(0, 0.3),
    fy: random.normal(0, 0.3),
    phase: random.uniform(0, 2 * Math.PI),
    amplitude: [0, 1, 2].map(() => random.normal(0, 0.15)),
  }));
  const image = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let v = base[c];
        for (const w of waves) v += w.amplitude[c] * Math.sin(w.fx * x + w.fy * y + w.phase);
        const pixel = Math.min(1, Math.max(0, v));
        image[(y * size + x) * 3 + c] = (pixel - MEAN[c]) / STD[c];
      }
    }
  }
  return image;
}

function images(seed: number, count: number, size: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => smoothImage(random, size));
}

const argmax = (v: Float32Array) => v.indexOf(Math.max(...v));
const convs = (m: FloatModel) => m.layers.filter((l): l is FloatConv => l.kind === 'conv');

// ---- architecture ----

// Building a full-size random ResNet draws up to 25M normals; share one per depth.
const fullSize = new Map<ResnetDepth, FloatModel>();
function fullModel(depth: ResnetDepth): FloatModel {
  if (!fullSize.has(depth)) fullSize.set(depth, resnetFloat({ depth, seed: 1 }));
  return fullSize.get(depth)!;
}

const EXPECTED: Record<ResnetDepth, { layers: number; convs: number; adds: number; params: number; gmacs: number }> = {
  // params: torchvision's count (conv + BN gamma/beta + fc); ours folds BN into one bias per channel.
  18: { layers: 31, convs: 20, adds: 8, params: 11_689_512, gmacs: 1.814 },
  34: { layers: 55, convs: 36, adds: 16, params: 21_797_672, gmacs: 3.664 },
  50: { layers: 72, convs: 53, adds: 16, params: 25_557_032, gmacs: 4.089 },
  // torchvision's model table: 7.80 and 11.51 GFLOPS (multiply-adds).
  101: { layers: 140, convs: 104, adds: 33, params: 44_549_160, gmacs: 7.801 },
  152: { layers: 208, convs: 155, adds: 50, params: 60_192_808, gmacs: 11.514 },
};

for (const depth of [18, 34, 50, 101, 152] as const) {
  test(`resnet${depth}: layer counts, parameter count, MACs, names`, () => {
    const m = fullModel(depth);
    const want = EXPECTED[depth];
    assert.is(m.layers.length, want.layers);
    assert.is(convs(m).length, want.convs);
    assert.is(m.layers.filter((l) => l.kind === 'add').length, want.adds);
    const params = m.layers.reduce(
      (n, l) => n + ('weight' in l ? l.weight.length + l.bias.length * (l.kind === 'conv' ? 2 : 1) : 0),
      0,
    );
    assert.is(params, want.params);
    assert.ok(Math.abs(macs(m) / 1e9 - want.gmacs) < 0.001, `${macs(m) / 1e9} GMAC`);
    assert.is(m.architecture, `resnet${depth}`);
    assert.is(m.labels.length, 1000);
    assert.is(m.labels[999], 'class 999');
    const names = m.layers.map((l) => l.name);
    for (const name of [
      'conv1',
      'maxpool',
      'layer1.0.conv1',
      'layer1.0.add',
      'layer2.0.downsample.0',
      'layer4.1.add',
      'avgpool',
      'fc',
    ]) {
      assert.ok(names.includes(name), name);
    }
    assert.is(names.includes('layer1.0.downsample.0'), depth >= 50);
  });
}

test('resnet18 tensor shapes: 224 -> 112 -> 56 -> 28 -> 14 -> 7 -> 1', () => {
  const m = fullModel(18);
  const shapeOf = (name: string): Shape => m.tensors[m.layers.find((l) => l.name === name)!.output];
  assert.equal(m.tensors[0], { h: 224, w: 224, c: 3 });
  assert.equal(shapeOf('conv1'), { h: 112, w: 112, c: 64 });
  assert.equal(shapeOf('maxpool'), { h: 56, w: 56, c: 64 });
  assert.equal(shapeOf('layer1.1.add'), { h: 56, w: 56, c: 64 });
  assert.equal(shapeOf('layer2.1.add'), { h: 28, w: 28, c: 128 });
  assert.equal(shapeOf('layer3.1.add'), { h: 14, w: 14, c: 256 });
  assert.equal(shapeOf('layer4.1.add'), { h: 7, w: 7, c: 512 });
  assert.equal(shapeOf('avgpool'), { h: 1, w: 1, c: 512 });
  assert.equal(shapeOf('fc'), { h: 1, w: 1, c: 1000 });
});

test('graph is well formed: each tensor written once, read only after it is written', () => {
  for (const depth of [18, 50] as const) {
    const m = fullModel(depth);
    const written = new Set([0]);
    for (const layer of m.layers) {
      for (const t of layerInputs(layer)) assert.ok(written.has(t), `${layer.name} reads ${t}`);
      assert.not.ok(written.has(layer.output), `${layer.name} rewrites ${layer.output}`);
      written.add(layer.output);
    }
    assert.is(written.size, m.tensors.length);
  }
});

test('resnet50 is v1.5 (stride on the 3x3) and expands by 4', () => {
  const m = fullModel(50);
  const byName = new Map(convs(m).map((l) => [l.name, l]));
  assert.is(byName.get('layer2.0.conv1')!.stride, 1);
  assert.is(byName.get('layer2.0.conv2')!.stride, 2);
  assert.is(byName.get('layer2.0.conv3')!.cout, 512);
  assert.is(byName.get('layer2.0.downsample.0')!.stride, 2);
  const fc = m.layers.at(-1)!;
  assert.ok(fc.kind === 'fc' && fc.cin === 2048);
});

test('weights are seeded and kaiming-normal (fan_out, relu)', () => {
  const a = resnetUnfolded({ depth: 18, seed: 7, inputSize: 32 });
  const b = resnetUnfolded({ depth: 18, seed: 7, inputSize: 32 });
  const c = resnetUnfolded({ depth: 18, seed: 8, inputSize: 32 });
  const conv = (net: typeof a, name: string) => convs(net.model).find((l) => l.name === name)!;
  assert.equal(conv(a, 'layer3.0.conv2').weight, conv(b, 'layer3.0.conv2').weight);
  assert.not.equal(conv(a, 'layer3.0.conv2').weight, conv(c, 'layer3.0.conv2').weight);
  const w = conv(a, 'layer3.0.conv2').weight; // 256 x 3 x 3 x 256
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  const expected = Math.sqrt(2 / (256 * 9));
  assert.ok(Math.abs(std / expected - 1) < 0.01, `std ${std} vs ${expected}`);
});

// ---- BatchNorm ----

function randomConv(random: Random): { layer: FloatConv; bn: BatchNorm; input: Float32Array; tensors: Shape[] } {
  const [cin, cout, size] = [3, 5, 6];
  const layer: FloatConv = {
    ...convGeometry('c', cin, cout, { k: 3, stride: 2, pad: 1 }),
    relu: true,
    weight: randomArray(cout * 9 * cin, () => random.normal(0, 1)),
    bias: randomArray(cout, () => random.normal(0, 1)),
  };
  const bn: BatchNorm = {
    gamma: randomArray(cout, () => random.uniform(0.5, 1.5)),
    beta: randomArray(cout, () => random.normal(0, 1)),
    mean: randomArray(cout, () => random.normal(0, 2)),
    variance: randomArray(cout, () => random.uniform(0.1, 10)),
  };
  const input = randomArray(size * size * cin, () => random.normal(0, 1));
  return {
    layer,
    bn,
    input,
    tensors: [
      { h: size, w: size, c: cin },
      { h: 3, w: 3, c: cout },
    ],
  };
}

test('folded conv equals conv followed by BN and ReLU', () => {
  const random = seededRandom(3);
  for (let trial = 0; trial < 10; trial++) {
    const { layer, bn, input, tensors } = randomConv(random);
    const raw = runLayer(tensors, { ...layer, relu: false }, [input]);
    const folded = runLayer(tensors, foldConv(layer, bn), [input]);
    raw.forEach((v, i) => {
      const c = i % layer.cout;
      const y = Math.max(0, (bn.gamma[c] * (v - bn.mean[c])) / Math.sqrt(bn.variance[c] + BN_EPSILON) + bn.beta[c]);
      assert.ok(Math.abs(folded[i] - y) < 1e-5 * Math.max(1, Math.abs(y)), `${folded[i]} vs ${y}`);
    });
  }
});

for (const depth of [18, 50] as const) {
  test(`resnet${depth} bnstats: each conv output has per-channel mean beta, std gamma on the batch`, () => {
    const batch = images(11, 4, 32);
    const net = resnetUnfolded({ depth, seed: 5, inputSize: 32 });
    // The conv inputs as the pass computed them: re-running the folded network instead would add
    // rounding drift, which deep layers with few samples per channel amplify.
    const seen = new Map<number, Float32Array[]>();
    const float = setBatchNormStats(net, batch, (t, values) => seen.set(t, values));
    float.layers.forEach((layer, index) => {
      if (layer.kind !== 'conv') return;
      const bn = net.batchNorms.get(index)!;
      const outputs = seen.get(layer.input)!.map((x) => runLayer(float.tensors, { ...layer, relu: false }, [x]));
      const count = (outputs.length * outputs[0].length) / layer.cout;
      for (let c = 0; c < layer.cout; c++) {
        let [sum, sumSquares] = [0, 0];
        for (const data of outputs) {
          for (let i = c; i < data.length; i += layer.cout)
            [sum, sumSquares] = [sum + data[i], sumSquares + data[i] ** 2];
        }
        const mean = sum / count;
        const std = Math.sqrt(Math.max(0, sumSquares / count - mean ** 2));
        // BN divides by sqrt(var + eps), so a nearly constant channel comes out slightly below gamma.
        const variance = bn.variance[c];
        const expectedStd = bn.gamma[c] * Math.sqrt(variance / (variance + BN_EPSILON));
        assert.ok(Math.abs(mean - bn.beta[c]) < 1e-4, `${layer.name}[${c}] mean ${mean} vs beta ${bn.beta[c]}`);
        assert.ok(Math.abs(std - expectedStd) < 1e-4, `${layer.name}[${c}] std ${std} vs ${expectedStd}`);
      }
    });
  });
}

test('fp32 top-1 varies across inputs once BN statistics come from data', () => {
  const { float } = buildTestModel({ depth: 18, seed: 2, inputSize: 32, calibration: images(21, 8, 32) });
  const inputs = images(22, 12, 32);
  const topClasses = (m: FloatModel) => new Set(inputs.map((input) => argmax(runFloat(m, input)))).size;
  const withData = topClasses(float);
  const withDefaults = topClasses(resnetFloat({ depth: 18, seed: 2, inputSize: 32 }));
  assert.ok(withData >= 6, `only ${withData} distinct top-1 classes over 12 inputs`);
  assert.ok(withData > withDefaults, `default BN statistics gave ${withDefaults} classes, data ${withData}`);
});

// ---- calibration ----

test('rangeParams: scale spans the range, zero point maps real 0', () => {
  assert.equal(rangeParams(-1, 3), { scale: 4 / 255, zeroPoint: 64 }); // 255/4 = 63.75
  assert.equal(rangeParams(0, 127.5), { scale: 0.5, zeroPoint: 0 });
  assert.equal(rangeParams(-127.5, 0), { scale: 0.5, zeroPoint: 255 });
  assert.equal(rangeParams(0, 0), { scale: 1, zeroPoint: 0 });
});

test('calibrate: ranges always include 0; maxpool shares its input parameters; fc output is 1/0', () => {
  const float = oneConvModel([1, 0, 0, -1], [0, 0], 2);
  const pooled: FloatModel = {
    ...float,
    tensors: [...float.tensors, { h: 1, w: 1, c: 2 }],
    layers: [
      float.layers[0],
      { kind: 'maxpool', name: 'p', input: 1, output: 5, k: 2, stride: 2, pad: 0 },
      ...float.layers.slice(1),
    ],
  };
  // Input channel 0 in 1..4, channel 1 in 5..8: the conv output is (x0, -x1).
  const params = calibrate(pooled, [Float32Array.of(1, 5, 2, 6, 3, 7, 4, 8)]);
  assert.equal(params[0], rangeParams(0, 8));
  assert.equal(params[1], rangeParams(-8, 4));
  assert.equal(params[5], params[1]);
  assert.equal(params[4], { scale: 1, zeroPoint: 0 });
});

test('single-pass build calibrates like a separate runFloat calibration of the final network', () => {
  const calibration = images(31, 6, 32);
  const { float, quant } = buildTestModel({ depth: 18, seed: 4, inputSize: 32, calibration });
  const separate = calibrate(float, calibration);
  quant.tensors.forEach((t, i) => {
    assert.ok(Math.abs(t.scale / separate[i].scale - 1) < 1e-4, `tensor ${i}: ${t.scale} vs ${separate[i].scale}`);
    assert.ok(Math.abs(t.zeroPoint - separate[i].zeroPoint) <= 1, `tensor ${i} zero point`);
  });
});

// ---- quantization ----

function checkQuantModel(quant: QuantModel): void {
  for (const layer of quant.layers) {
    const out = quant.tensors[layer.output];
    if (layer.kind === 'conv' || layer.kind === 'fc') {
      const per = layer.weight.length / layer.cout;
      for (let o = 0; o < layer.cout; o++) {
        const channel = layer.weight.subarray(o * per, (o + 1) * per);
        const maxAbs = channel.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assert.ok(
          channel.every((v) => v >= -127 && v <= 127),
          `${layer.name}[${o}] outside ±127`,
        );
        assert.is(maxAbs, 127, `${layer.name}[${o}] does not use the full range`);
        assert.ok(Math.abs(layer.bias[o]) <= 2 ** 30);
      }
      assert.ok(layer.multiplier.every((m) => m > 0 && Math.fround(m) === m));
    }
    if (layer.kind === 'add') {
      assert.ok([layer.multiplierA, layer.multiplierB].every((m) => Math.fround(m) === m));
    }
    if (layer.kind === 'gap') assert.is(Math.fround(layer.multiplier), layer.multiplier);
    if (layer.kind === 'maxpool') {
      const input = quant.tensors[layer.input];
      assert.equal([out.scale, out.zeroPoint], [input.scale, input.zeroPoint]);
    }
    if ((layer.kind === 'conv' || layer.kind === 'add') && layer.relu) assert.is(out.zeroPoint, 0, layer.name);
    if (layer.kind === 'fc') assert.equal([out.scale, out.zeroPoint], [1, 0]);
  }
  assert.ok(
    quant.tensors.every((t) => t.scale > 0 && Number.isFinite(t.scale) && t.zeroPoint >= 0 && t.zeroPoint <= 255),
  );
}

test('built resnet18 and resnet50: weights, multipliers and tensor parameters obey the arithmetic', () => {
  for (const depth of [18, 50] as const) {
    const { float, quant } = buildTestModel({ depth, seed: 9, inputSize: 32, calibration: images(41, 3, 32) });
    checkQuantModel(quant);
    assert.is(quant.layers.length, float.layers.length);
    assert.is(quant.tensors[0].h, 32);
    assert.ok(quant.tensors[0].zeroPoint > 0, 'the normalised input has negative values');
    assert.equal(quant.preprocessing, {
      resize: 37,
      crop: 32,
      colorOrder: 'RGB',
      pixelScale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    assert.equal(quant.labels.slice(0, 2), ['class 0', 'class 1']);
  }
});

test('preprocessing of a full-size model is torchvision ImageNet', () => {
  assert.equal(fullModel(18).preprocessing, {
    resize: 256,
    crop: 224,
    colorOrder: 'RGB',
    pixelScale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  });
  assert.is(resnetFloat({ depth: 18, seed: 1, inputSize: 32, numClasses: 10 }).labels.length, 10);
});

test('rne rounds half to even', () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, 0],
    [-1.5, -2],
    [-2.5, -2],
    [2.4999, 2],
    [-2.5001, -3],
    [1e9 + 0.5, 1e9],
    [7, 7],
  ];
  for (const [v, want] of cases) assert.is(rne(v) + 0, want, `rne(${v})`);
});

function oneConvModel(weight: number[], bias: number[], cout: number): FloatModel {
  const cin = weight.length / cout;
  const layers: FloatLayer[] = [
    {
      ...convGeometry('c', cin, cout),
      relu: false,
      weight: Float32Array.from(weight),
      bias: Float32Array.from(bias),
    },
    { kind: 'gap', name: 'g', input: 1, output: 2 },
    { kind: 'add', name: 'a', inputs: [2, 2], output: 3, relu: false },
    {
      kind: 'fc',
      name: 'fc',
      input: 3,
      output: 4,
      cin: cout,
      cout: 1,
      weight: Float32Array.from({ length: cout }, () => 0.5),
      bias: Float32Array.of(0),
    },
  ];
  const tensors = [
    { h: 2, w: 2, c: cin },
    { h: 2, w: 2, c: cout },
    { h: 1, w: 1, c: cout },
    { h: 1, w: 1, c: cout },
    { h: 1, w: 1, c: 1 },
  ];
  return { architecture: 'test', preprocessing: imagenetPreprocessing(2), labels: ['only'], tensors, layers };
}

test('quantizeModel arithmetic by hand', () => {
  const float = oneConvModel([0.5, -0.25, 0, 0], [0.3, -0.2], 2);
  const params: QuantParams[] = [
    { scale: 0.1, zeroPoint: 7 },
    { scale: 0.2, zeroPoint: 9 },
    { scale: 0.05, zeroPoint: 3 },
    { scale: 0.3, zeroPoint: 1 },
    { scale: 1, zeroPoint: 0 },
  ];
  const quant = quantizeModel(float, params);
  const [conv, gap, add, fc] = quant.layers;
  assert.ok(conv.kind === 'conv' && gap.kind === 'gap' && add.kind === 'add' && fc.kind === 'fc');
  const sw0 = 0.5 / 127;
  // -0.25 / sw0 = -63.5, a tie: rounds to even -64. The all-zero channel gets scale 1.
  assert.equal([...conv.weight], [127, -64, 0, 0]);
  assert.equal([...conv.bias], [rne(0.3 / (0.1 * sw0)), rne(-0.2 / 0.1)]); // 762, -2
  assert.equal([...conv.bias], [762, -2]);
  assert.equal([...conv.multiplier], [Math.fround((0.1 * sw0) / 0.2), Math.fround(0.1 / 0.2)]);
  assert.is(gap.multiplier, Math.fround(0.2 / (0.05 * 4)));
  assert.is(add.multiplierA, Math.fround(0.05 / 0.3));
  assert.is(add.multiplierB, Math.fround(0.05 / 0.3));
  assert.equal([...fc.weight], [127, 127]);
  assert.equal([...fc.multiplier], [Math.fround((0.3 * 0.5) / 127)]);
  assert.equal(quant.tensors[1], { h: 2, w: 2, c: 2, scale: 0.2, zeroPoint: 9 });
});

test('quantizeModel clamps the bias to ±2^30', () => {
  const float = oneConvModel([1e-6, 1e-6], [1e6, -1e6], 2);
  const params: QuantParams[] = [
    { scale: 1e-3, zeroPoint: 0 },
    ...Array.from({ length: 3 }, () => ({ scale: 1, zeroPoint: 0 })),
    { scale: 1, zeroPoint: 0 },
  ];
  const conv = quantizeModel(float, params).layers[0];
  assert.ok(conv.kind === 'conv');
  assert.equal([...conv.bias], [2 ** 30, -(2 ** 30)]);
});

test('quantizeModel refuses parameters the arithmetic cannot honour', () => {
  const float = oneConvModel([1, 1], [0, 0], 2);
  const ok = (): QuantParams[] => Array.from({ length: 5 }, () => ({ scale: 1, zeroPoint: 0 }));
  const badFc = ok();
  badFc[4] = { scale: 0.5, zeroPoint: 0 };
  assert.throws(() => quantizeModel(float, badFc), /fc output/);
  assert.throws(() => quantizeModel(float, ok().slice(1)), /tensor parameters/);
});

test.run();
