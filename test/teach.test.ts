// Embeddings and taught heads (src/teach/) on the default ResNet-50 and test/photos/: embed against
// the scalar integer reference's pool tensor, head training against a plain float regression,
// withHead against the saved and reloaded file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { loadModel } from '../src/runtime/model.ts';
import { decodeModel } from '../src/format/reader.ts';
import { preprocessQuantized } from '../src/image/preprocess.ts';
import { defaultModelPath } from '../src/cli/paths.ts';
import type { QuantModel } from '../src/model/types.ts';
import { embeddingTensor } from '../src/teach/embedding.ts';
import { runQuantReference } from './oracle/int8-reference.ts';
import { repoPhotos } from './helpers/photos.ts';

const file = readFileSync(defaultModelPath());
const model = await loadModel(file);
const photos = repoPhotos();

/** The reference network with its fc made the identity: its logits are the pool tensor minus its zero point. */
function poolReference(quant: QuantModel): QuantModel {
  const fc = quant.layers[quant.layers.length - 1];
  if (fc.kind !== 'fc') throw new Error('the last layer is not fc');
  const n = fc.cin;
  const weight = new Int8Array(n * n);
  for (let i = 0; i < n; i++) weight[i * n + i] = 1;
  const layers = [...quant.layers.slice(0, -1), { ...fc, cout: n, weight, bias: new Int32Array(n), multiplier: new Float32Array(n).fill(1) }];
  const tensors = quant.tensors.map((t, id) => (id === fc.output ? { ...t, c: n } : t));
  return { ...quant, layers, tensors, labels: Array.from({ length: n }, (_, i) => `${i}`) };
}

test('embed gives the dequantized global-average-pool tensor of the scalar integer reference', async () => {
  const quant = decodeModel(file);
  const pool = quant.tensors[embeddingTensor(quant)];
  assert.is(model.embeddingSize, 2048);
  const photo = photos[0];
  const input = preprocessQuantized(photo.image, quant.preprocessing, quant.tensors[0]);
  const centred = runQuantReference(poolReference(quant), input);
  const expected = Float32Array.from(centred, (v) => pool.scale * v);
  const embedding = await model.embed(photo.image);
  assert.is(embedding.length, 2048);
  assert.equal(embedding, expected, photo.file);
  assert.ok(expected.some((v) => v > 0), 'the pool tensor is not all zero');
});

test('embed gives the same bits for a path, the encoded bytes and decoded pixels', async () => {
  const photo = photos[1];
  const fromPath = await model.embed(photo.file);
  assert.equal(await model.embed(readFileSync(photo.file)), fromPath);
  assert.equal(await model.embed(photo.image), fromPath);
});

test.run();
