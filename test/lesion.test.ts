// Block lesions (src/lesion/): a ResNet-18 with BN statistics from photos, with blocks dropped by
// withoutBlocks, against the same network BUILT without those blocks (src/builder/resnet.ts's
// omitBlocks, its layers taken by name from the full one) quantized from scratch: the files are
// equal byte for byte, so every layer is; the runtime runs the result bit for bit as the scalar
// integer reference does. Bad requests get typed errors naming the block.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setBatchNormStats } from '../src/builder/bnstats.ts';
import { imagenetPreprocessing, type ResnetOptions, resnetUnfolded } from '../src/builder/resnet.ts';
import { BlockLesionError } from '../src/errors.ts';
import { decodeModel, readModel } from '../src/format/reader.ts';
import { writeModel } from '../src/format/writer.ts';
import { preprocessFloat, preprocessQuantized } from '../src/image/preprocess.ts';
import { residualBlocks } from '../src/lesion/blocks.ts';
import { convStatistics, corrected } from '../src/lesion/correct.ts';
import { variantLogits } from '../src/lesion/evaluate.ts';
import { fitBlocks } from '../src/lesion/fit.ts';
import { withFittedBlocks, withoutBlocks } from '../src/lesion/without.ts';
import type { FloatModel, QuantLayer, QuantModel, QuantParams } from '../src/model/types.ts';
import { TensorRanges } from '../src/quantize/calibrate.ts';
import { quantizeModel } from '../src/quantize/quantize.ts';
import { runFloat } from '../src/reference/fp32.ts';
import { loadModel } from '../src/runtime/model.ts';
import { photoSplit } from './helpers/photos.ts';
import { runQuantReference } from './oracle/int8-reference.ts';

const DEFAULT_MODEL = join(import.meta.dirname, '..', 'weights', 'default.rnw');
// Views of the repository's photos: BN statistics and ranges from 8, the comparisons on 4 others.
const photos = photoSplit(8, 4);
const options: ResnetOptions = { depth: 18, seed: 11, inputSize: 112, numClasses: 50 };

/** The full network: BN statistics and activation ranges measured on the photos. */
function fullNetwork(calibration: Float32Array[]): { float: FloatModel; params: QuantParams[] } {
  const net = resnetUnfolded(options);
  const ranges = new TensorRanges(net.model.tensors.length);
  const float = setBatchNormStats(net, calibration, (t, batch) => ranges.observeBatch(t, batch));
  return { float, params: ranges.quantParams(float) };
}

/**
 * The network built without `omit`: the builder's graph, each layer's folded weights and each
 * tensor's range taken by name from the full network; the tensor before a dropped block holds
 * what the block's output held (`feeds` maps that tensor's writer to the block's add).
 */
function builtWithout(
  full: { float: FloatModel; params: QuantParams[] },
  omit: string[],
  feeds: Record<string, string>,
): QuantModel {
  const float = floatWithout(full.float, omit);
  const byName = new Map(full.float.layers.map((layer) => [layer.name, layer]));
  const rangeOf = (name: string) => full.params[byName.get(name)!.output];
  const params = float.tensors.map((_, t) => {
    if (t === 0) return full.params[0];
    const writer = float.layers.find((l) => l.output === t)!.name;
    return rangeOf(feeds[writer] ?? writer);
  });
  return quantizeModel(float, params);
}

/** The builder's graph without `omit`, each layer's folded weights taken by name from `full`. */
function floatWithout(full: FloatModel, omit: string[]): FloatModel {
  const graph = resnetUnfolded({ ...options, omitBlocks: omit }).model;
  const byName = new Map(full.layers.map((layer) => [layer.name, layer]));
  const layers = graph.layers.map((layer) => ({ ...byName.get(layer.name)!, ...geometry(layer) }));
  return { ...full, tensors: graph.tensors, layers } as FloatModel;
}

function geometry(layer: FloatModel['layers'][number]) {
  return layer.kind === 'add'
    ? { inputs: layer.inputs, output: layer.output }
    : { input: layer.input, output: layer.output };
}

const pre = imagenetPreprocessing(options.inputSize!);
const full = fullNetwork(photos.calibration.map((p) => preprocessFloat(p.image, pre)));
const quant = quantizeModel(full.float, full.params);
const inputs = photos.test.map((p) => preprocessQuantized(p.image, pre, quant.tensors[0]));

const cases: [string[], Record<string, string>][] = [
  [['layer4.1'], { 'layer4.0.add': 'layer4.1.add' }],
  [
    ['layer1.1', 'layer2.1', 'layer3.1'],
    { 'layer1.0.add': 'layer1.1.add', 'layer2.0.add': 'layer2.1.add', 'layer3.0.add': 'layer3.1.add' },
  ],
];
for (const [omit, feeds] of cases) {
  test(`without ${omit.join(', ')}: byte for byte the network built without them, run as the integer reference runs it`, async () => {
    const built = builtWithout(full, omit, feeds);
    const file = writeModel(withoutBlocks(quant, omit));
    assert.equal(file, writeModel(built), 'the shortened file differs from the built one');
    assert.is(built.layers.length, quant.layers.length - 3 * omit.length);
    const model = await loadModel(file);
    inputs.forEach((input, i) => assert.equal(model.run(input), runQuantReference(built, input), photos.test[i].file));
    model.dispose();
  });
}

test('Model.withoutBlocks: the built network run as the integer reference runs it; no names, the same file; typed errors', async () => {
  const model = await loadModel(writeModel(quant));
  const shortened = await model.withoutBlocks(['layer4.1']);
  const built = builtWithout(full, ['layer4.1'], { 'layer4.0.add': 'layer4.1.add' });
  assert.equal(shortened.toFile(), writeModel(built));
  inputs.forEach((input) => assert.equal(shortened.run(input), runQuantReference(built, input)));
  const same = await model.withoutBlocks([]);
  assert.equal(same.toFile(), model.toFile());
  for (const names of [['layer9.9'], ['layer2.0'], residualBlocks(quant).map((b) => b.name)]) {
    try {
      await model.withoutBlocks(names);
      assert.unreachable(`withoutBlocks(${names.join(', ')}) resolved`);
    } catch (error) {
      assert.instance(error, BlockLesionError);
    }
  }
  const replaced = await model.withoutBlocks(['layer2.0'], { downsampling: 'shortcut' });
  const reference = withoutBlocks(quant, ['layer2.0'], { downsampling: 'shortcut' });
  inputs.forEach((input) => assert.equal(replaced.run(input), runQuantReference(reference, input)));
  for (const m of [model, shortened, same, replaced]) m.dispose();
});

test('variants run from where they differ give the logits each gives run whole', async () => {
  const variants = [
    withoutBlocks(quant, ['layer4.1']),
    withoutBlocks(quant, ['layer1.1', 'layer3.1']),
    withoutBlocks(quant, ['layer2.0'], { downsampling: 'shortcut' }),
    quant,
  ];
  const studyPhotos = inputs.map((input, i) => ({ file: photos.test[i].file, input }));
  let checked = 0;
  await variantLogits(quant, variants, studyPhotos, (k, p, logits) => {
    assert.equal(logits, runQuantReference(variants[k], inputs[p]), `variant ${k}, ${photos.test[p].file}`);
    checked++;
  });
  assert.is(checked, variants.length * inputs.length);
});

test('a block replaced by its fitted line: the least-squares line of the float network, run as the integer reference runs it', async () => {
  const studyPhotos = photos.calibration.map((p) => ({
    file: p.file,
    input: preprocessQuantized(p.image, pre, quant.tensors[0]),
  }));
  const fits = await fitBlocks(quant, ['layer3.1'], studyPhotos);
  // The oracle: the same line fitted on the float network's tensors, by a plain per-channel regression.
  const block = residualBlocks(full.float).find((b) => b.name === 'layer3.1')!;
  const pairs: Float32Array[][] = [];
  for (const p of photos.calibration) {
    const seen: Float32Array[] = [];
    runFloat(full.float, preprocessFloat(p.image, pre), (t, data) => (seen[t] = data));
    pairs.push([seen[block.input], seen[block.output]]);
  }
  const channels = full.float.tensors[block.input].c;
  const { scale } = fits.get('layer3.1')!;
  let close = 0;
  for (let c = 0; c < channels; c++) {
    const xs = pairs.flatMap(([x]) => Array.from(x).filter((_, i) => i % channels === c));
    const ys = pairs.flatMap(([, y]) => Array.from(y).filter((_, i) => i % channels === c));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const [mx, my] = [mean(xs), mean(ys)];
    const slope = mean(xs.map((x, i) => (x - mx) * (ys[i] - my))) / mean(xs.map((x) => (x - mx) ** 2));
    if (Math.abs(scale[c] - slope) < 0.05 + 0.05 * Math.abs(slope)) close++;
  }
  assert.ok(close >= 0.9 * channels, `${close} of ${channels} channels' slopes within 5% of the float fit's`);
  const fitted = withFittedBlocks(quant, fits);
  assert.equal(
    fitted.layers.filter((l) => l.name.startsWith('layer3.1')).map((l) => l.kind),
    ['affine'],
  );
  const model = await loadModel(writeModel(fitted));
  inputs.forEach((input) => assert.equal(model.run(input), runQuantReference(fitted, input)));
  model.dispose();
});

test('a downsampling block replaced by its shortcut runs as the integer reference runs it, and differs', async () => {
  const shortened = withoutBlocks(quant, ['layer3.0'], { downsampling: 'shortcut' });
  assert.equal(
    shortened.layers.map((l) => l.name).filter((n) => n.startsWith('layer3.0')),
    ['layer3.0.downsample.0'],
  );
  const model = await loadModel(writeModel(shortened));
  const logits = inputs.map((input) => model.run(input));
  inputs.forEach((input, i) => assert.equal(logits[i], runQuantReference(shortened, input)));
  assert.not.equal(logits[0], runQuantReference(quant, inputs[0]));
  model.dispose();
});

/** Per channel, a conv's mean value before its ReLU over every output pixel of every photo: plain loops. */
function meanBeforeRelu(model: QuantModel, name: string, inputs: Uint8Array[]): Float64Array {
  const layer = model.layers.find((l) => l.name === name)!;
  if (layer.kind !== 'conv') throw new Error(`${name} is not a conv`);
  const [x, out] = [model.tensors[layer.input], model.tensors[layer.output]];
  const sums = new Float64Array(layer.cout);
  for (const input of inputs) {
    let q = input;
    runQuantReference(model, input, (t, data) => {
      if (t === layer.input) q = data;
    });
    for (let oy = 0; oy < out.h; oy++)
      for (let ox = 0; ox < out.w; ox++)
        for (let o = 0; o < layer.cout; o++) {
          let acc = layer.bias[o];
          for (let ky = 0; ky < layer.kh; ky++)
            for (let kx = 0; kx < layer.kw; kx++) {
              const [iy, ix] = [oy * layer.stride - layer.pad + ky, ox * layer.stride - layer.pad + kx];
              if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
              for (let i = 0; i < layer.cin; i++)
                acc +=
                  (q[(iy * x.w + ix) * x.c + i] - x.zeroPoint) *
                  layer.weight[((o * layer.kh + ky) * layer.kw + kx) * layer.cin + i];
            }
          sums[o] += acc * layer.multiplier[o] * out.scale;
        }
  }
  return sums.map((s) => s / (inputs.length * out.h * out.w));
}

test("statistics corrected after a lesion: each later conv's mean before ReLU is the full network's again", async () => {
  const studyPhotos = photos.calibration.slice(0, 4).map((p) => ({
    file: p.file,
    input: preprocessQuantized(p.image, pre, quant.tensors[0]),
  }));
  const shortened = withoutBlocks(quant, ['layer3.1']);
  const targets = await convStatistics(quant, studyPhotos, 'mean, scale');
  const later = shortened.layers.filter((l) => l.kind === 'conv' && l.name.startsWith('layer4')).map((l) => l.name);
  const studied = studyPhotos.map((p) => p.input);
  for (const correction of ['mean', 'mean, scale'] as const) {
    const fixed = await corrected(quant, shortened, targets, studyPhotos, correction);
    let drifted = 0;
    for (const name of later) {
      const [want, before, after] = [quant, shortened, fixed].map((m) => meanBeforeRelu(m, name, studied));
      const layer = fixed.layers.find((l) => l.name === name) as Extract<QuantLayer, { kind: 'conv' }>;
      const unit = (o: number) => layer.multiplier[o] * fixed.tensors[layer.output].scale;
      want.forEach((w, o) => {
        // The shift is rounded to the int32 bias's unit.
        assert.ok(Math.abs(after[o] - w) <= 0.5 * unit(o) + 1e-9 * Math.abs(w), `${correction}: ${name}[${o}]`);
        if (Math.abs(before[o] - w) > unit(o)) drifted++;
      });
    }
    assert.ok(drifted > 100, `${correction}: only ${drifted} channels had drifted`);
    const model = await loadModel(writeModel(fixed));
    inputs.forEach((input) => assert.equal(model.run(input), runQuantReference(fixed, input)));
    model.dispose();
  }
  const unchanged = await corrected(quant, quant, targets, studyPhotos, 'mean, scale');
  assert.equal(writeModel(unchanged), writeModel(quant));
  const meansOnly = await convStatistics(quant, studyPhotos, 'mean');
  const other = new Map(targets);
  other.set('layer4.0.conv1', { mean: new Float64Array(3), std: new Float64Array(3) });
  for (const [bad, pattern] of [
    [() => corrected(quant, shortened, targets, [], 'mean'), /no photos/],
    [
      () => corrected(quant, shortened, other, studyPhotos, 'mean'),
      /layer4\.0\.conv1: 3 channels of statistics for 512/,
    ],
    [() => corrected(quant, shortened, meansOnly, studyPhotos, 'mean, scale'), /no spread to match/],
  ] as const) {
    try {
      await bad();
      assert.unreachable('resolved');
    } catch (error) {
      assert.instance(error, BlockLesionError);
      assert.match((error as Error).message, pattern);
    }
  }
});

test('typed errors name the block: unknown, downsampling, named twice, every block', () => {
  const fails = (names: string[], block: string | undefined, pattern: RegExp) => {
    try {
      withoutBlocks(quant, names);
    } catch (error) {
      assert.instance(error, BlockLesionError);
      assert.is((error as BlockLesionError).block, block);
      assert.match((error as Error).message, pattern);
      return;
    }
    assert.unreachable(`withoutBlocks(${names.join(', ')}) did not throw`);
  };
  fails(['layer9.9'], 'layer9.9', /no residual block has this name; the blocks are layer1\.0, layer1\.1, layer2\.0/);
  fails(['layer1.1', 'layer2.0'], 'layer2.0', /downsamples through a projection shortcut \(layer2\.0\.downsample\.0\)/);
  fails(['layer1.1', 'layer1.1'], 'layer1.1', /named twice/);
  fails(
    residualBlocks(quant).map((b) => b.name),
    undefined,
    /dropping all 8 residual blocks/,
  );
});

test('the default ResNet-50: 16 blocks named as Keras names them, 4 with a projection; dropping none writes the same bytes', () => {
  const bytes = new Uint8Array(readFileSync(DEFAULT_MODEL));
  const model = decodeModel(bytes);
  const blocks = residualBlocks(model);
  assert.equal(
    blocks.map((b) => b.name),
    [
      'res2a',
      'res2b',
      'res2c',
      'res3a',
      'res3b',
      'res3c',
      'res3d',
      'res4a',
      'res4b',
      'res4c',
      'res4d',
      'res4e',
      'res4f',
      'res5a',
      'res5b',
      'res5c',
    ],
  );
  assert.equal(
    blocks.filter((b) => b.shortcut.length > 0).map((b) => model.layers[b.shortcut[0]].name),
    ['res2a_branch1', 'res3a_branch1', 'res4a_branch1', 'res5a_branch1'],
  );
  assert.ok(withoutBlocks(model, []) === model);
  assert.equal(writeModel(withoutBlocks(model, []), readModel(bytes).header.producer), bytes);
});

test('resnet-wasm lesion --drop writes the shortened model whole, or nothing and an error naming the block', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lesion-'));
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'lesion', ...args],
      { encoding: 'utf8' },
    );
  try {
    const bytes = new Uint8Array(readFileSync(DEFAULT_MODEL));
    const good = cli('--drop', 'res3b,res4d', '-o', join(dir, 'fast.rnw'));
    assert.is(good.status, 0, good.stderr);
    assert.equal(
      new Uint8Array(readFileSync(join(dir, 'fast.rnw'))),
      writeModel(withoutBlocks(decodeModel(bytes), ['res3b', 'res4d']), readModel(bytes).header.producer),
    );
    const bad = cli('--drop', 'res3b,res4a', '-o', join(dir, 'bad.rnw'));
    assert.is(bad.status, 1);
    assert.match(bad.stderr, /block "res4a": it downsamples through a projection shortcut \(res4a_branch1\)/);
    assert.equal(readdirSync(dir), ['fast.rnw']);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test.run();
