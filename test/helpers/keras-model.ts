// TF.js itself as the oracle for the TF.js layers importer: a small Keras-style ResNet built with
// tfjs-layers, written to disk the way tensorflowjs_converter lays a model out (model.json plus
// weight shards), and any such model read back into TF.js with its final Dense made linear.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { mulberry32, randomFloat32Array } from './random.ts';

tf.env().set('PROD', true); // no "install tfjs-node" banner
await tf.setBackend('cpu');

export { tf };

type Layer = tfl.layers.Layer;
type Tensor = tfl.SymbolicTensor;

const conv = (
  name: string,
  filters: number,
  kernelSize: number,
  strides = 1,
  padding: 'valid' | 'same' = 'valid',
  activation: 'linear' | 'relu' = 'linear',
) => tfl.layers.conv2d({ name, filters, kernelSize, strides, padding, activation });
const bn = (name: string, epsilon: number) => tfl.layers.batchNormalization({ name, epsilon });
const relu = (name: string) => tfl.layers.activation({ name, activation: 'relu' });
const chain = (x: Tensor, ...layers: Layer[]) => layers.reduce((t, layer) => layer.apply(t) as Tensor, x);

/**
 * 32x32x3 → stem (pad, 7x7/2 conv with bias, BN ε 1e-3, ReLU, pad, 3x3/2 max pool) → a bottleneck
 * with the stride on its first 1x1 conv and a projection shortcut → a Dropout (nothing at
 * inference, but it keeps the 4x4x16 shape) → an identity block (one conv
 * with its own ReLU, one BN with ε 0.1, a ReLU layer at the end) → global average pool → Dense
 * with softmax. Every weight, BN statistics included, is drawn from mulberry32(seed).
 */
export function buildKerasModel(seed: number): tfl.LayersModel {
  const input = tfl.input({ name: 'input_1', shape: [32, 32, 3] });
  const stem = chain(
    input,
    tfl.layers.zeroPadding2d({ name: 'conv1_pad', padding: 3 }),
    conv('conv1', 8, 7, 2),
    bn('bn_conv1', 1e-3),
    relu('conv1_relu'),
    tfl.layers.zeroPadding2d({ name: 'pool1_pad', padding: 1 }),
    tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 3, strides: 2 }),
  );
  const branch = chain(
    stem,
    conv('res2a_branch2a', 4, 1, 2),
    bn('bn2a_branch2a', 1.001e-5),
    relu('res2a_branch2a_relu'),
    conv('res2a_branch2b', 4, 3, 1, 'same'),
    bn('bn2a_branch2b', 1.001e-5),
    relu('res2a_branch2b_relu'),
    conv('res2a_branch2c', 16, 1),
    bn('bn2a_branch2c', 1.001e-5),
  );
  const shortcut = chain(stem, conv('res2a_branch1', 16, 1, 2), bn('bn2a_branch1', 1.001e-5));
  const block1 = chain(
    tfl.layers.add({ name: 'res2a' }).apply([branch, shortcut]) as Tensor,
    relu('res2a_relu'),
    tfl.layers.dropout({ name: 'res2a_dropout', rate: 0.5 }),
  );
  const identity = chain(
    block1,
    conv('res2b_branch2a', 4, 1, 1, 'valid', 'relu'),
    conv('res2b_branch2b', 4, 3, 1, 'same'),
    bn('bn2b_branch2b', 0.1),
    relu('res2b_branch2b_relu'),
    conv('res2b_branch2c', 16, 1),
    bn('bn2b_branch2c', 1e-3),
  );
  const output = chain(
    tfl.layers.add({ name: 'res2b' }).apply([identity, block1]) as Tensor,
    tfl.layers.reLU({ name: 'res2b_relu' }),
    tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }),
    tfl.layers.dense({ name: 'fc1000', units: 10, activation: 'softmax' }),
  );
  const model = tfl.model({ name: 'tiny_resnet', inputs: input, outputs: output });

  const rng = mulberry32(seed);
  model.setWeights(
    model.weights.map(({ name, shape }) => {
      const count = shape.reduce((n, d) => n! * d!, 1)!;
      const fanIn = count / shape[shape.length - 1]!;
      // TF.js suffixes variable names (`moving_variance_1`) once a process has built the model before.
      const kind = /\/([a-z_]+?)(_\d+)?$/.exec(name)![1];
      const [lo, hi] =
        kind === 'kernel'
          ? [-Math.sqrt(6 / fanIn), Math.sqrt(6 / fanIn)]
          : kind === 'gamma'
            ? [0.5, 1.5]
            : kind === 'moving_variance'
              ? [0.01, 1]
              : [-0.5, 0.5]; // bias, beta, moving_mean
      return tf.tensor(randomFloat32Array(rng, count, lo, hi), shape as number[]);
    }),
  );
  return model;
}

/** model.json + `shards` files of about equal size, cut regardless of where weights begin and end. */
export async function saveTfjsLayers(model: tfl.LayersModel, dir: string, shards: number): Promise<string> {
  const path = join(dir, 'model.json');
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      const size = Math.ceil(data.length / shards);
      const paths = Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`);
      paths.forEach((shard, i) => writeFileSync(join(dir, shard), data.subarray(i * size, (i + 1) * size)));
      const json = {
        format: 'layers-model',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths, weights: artifacts.weightSpecs }],
      };
      writeFileSync(path, JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return path;
}

/** A model.json and its shards from disk into TF.js, the last Dense layer's activation set to linear: it returns logits. */
export async function loadTfjsLogits(modelJsonPath: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
  const layers: { class_name: string; config: { activation?: string } }[] = (
    json.modelTopology.model_config ?? json.modelTopology
  ).config.layers;
  layers.filter((layer) => layer.class_name === 'Dense').at(-1)!.config.activation = 'linear';
  const groups: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] = json.weightsManifest;
  const weightData = groups.flatMap((g) =>
    g.paths.map((p) => {
      const bytes = readFileSync(join(dirname(modelJsonPath), p));
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    }),
  );
  return tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: groups.flatMap((g) => g.weights), weightData }),
  );
}

/** One NHWC image through a TF.js model: its output row. */
export function predict(model: tfl.LayersModel, input: Float32Array, [h, w, c]: number[]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor4d(input, [1, h, w, c])) as tf.Tensor).dataSync() as Float32Array);
}
