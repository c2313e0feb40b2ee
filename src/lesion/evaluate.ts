/**
 * What a network answers on the study's photos, and how fast it runs: the model is written as a
 * `.rnw` and loaded by the runtime as any user would load it (1 thread), so the answers are the
 * bits a user gets and the times include every kernel as it really runs.
 */

import { layerTimes } from '../cli/profile.ts';
import { writeModel } from '../format/writer.ts';
import { layerInputs, type QuantModel } from '../model/types.ts';
import { loadModel, type Model } from '../runtime/model.ts';
import type { StudyPhoto } from './photos.ts';

async function loaded<T>(model: QuantModel, use: (loaded: Model) => T): Promise<T> {
  const runtime = await loadOne(model);
  try {
    return use(runtime);
  } finally {
    runtime.dispose();
  }
}

/** The top-1 class of each photo. */
export function topOnes(model: QuantModel, photos: StudyPhoto[]): Promise<Int32Array> {
  return loaded(model, (runtime) => Int32Array.from(photos, (p) => argmax(runtime.run(p.input))));
}

/** The top-1 class of each photo for each variant of `reference` (variantLogits). */
export async function variantTopOnes(
  reference: QuantModel,
  variants: QuantModel[],
  photos: StudyPhoto[],
): Promise<Int32Array[]> {
  const answers = variants.map(() => new Int32Array(photos.length));
  await variantLogits(reference, variants, photos, (k, p, logits) => (answers[k][p] = argmax(logits)));
  return answers;
}

/**
 * Each variant's logits on each photo, for variants of `reference` (a lesion of it, a
 * recalibration). `reference` runs once per photo, layer by layer; at the first layer where a
 * variant differs, the variant is handed the tensors its layers from there on read that earlier
 * layers wrote, and runs only its own tail: the same bits as running it whole, in less time.
 */
export async function variantLogits(
  reference: QuantModel,
  variants: QuantModel[],
  photos: StudyPhoto[],
  use: (variant: number, photo: number, logits: Float32Array) => void,
): Promise<void> {
  const resumed = variants.map((model) => {
    const from = firstDifference(reference, model);
    return { from, handed: handedTensors(reference, model, from) };
  });
  const runtimes = await Promise.all([reference, ...variants].map(loadOne));
  try {
    const [full, ...tails] = runtimes.map((r) => r.layers);
    photos.forEach((photo, p) => {
      full.setInput(photo.input);
      full.header.layers.forEach((layer, i) => {
        resumed.forEach((variant, k) => {
          if (variant.from !== i) return;
          const tail = tails[k];
          for (const t of variant.handed) tail.writeTensor(t, full.readTensor(t));
          tail.header.layers.forEach((l, j) => j >= i && tail.runLayer(l, j));
          use(k, p, tail.logits());
        });
        full.runLayer(layer, i);
      });
    });
  } finally {
    for (const runtime of runtimes) runtime.dispose();
  }
}

/** The tensors a variant's tail reads that came before it; the reference must hold the same ones, still live. */
function handedTensors(reference: QuantModel, model: QuantModel, from: number): number[] {
  const before = new Set([0, ...model.layers.slice(0, from).map((l) => l.output)]);
  const handed = [...new Set(model.layers.slice(from).flatMap(layerInputs))].filter((t) => before.has(t));
  const live = new Set(reference.layers.slice(from).flatMap(layerInputs));
  for (const t of handed) {
    const [a, b] = [model.tensors[t], reference.tensors[t]];
    const same = b && a.h === b.h && a.w === b.w && a.c === b.c && a.scale === b.scale && a.zeroPoint === b.zeroPoint;
    if (!same || !live.has(t)) throw new RangeError(`tensor ${t} before layer ${from} is not the reference's`);
  }
  return handed;
}

/** The index of the first layer of `model` that is not `reference`'s (by content), or its layer count. */
export function firstDifference(reference: QuantModel, model: QuantModel): number {
  const index = model.layers.findIndex((layer, i) => {
    const other = reference.layers[i];
    if (!other || !sameRecord(layer, other)) return true;
    const [a, b] = [model.tensors[layer.output], reference.tensors[other.output]];
    return a.scale !== b.scale || a.zeroPoint !== b.zeroPoint;
  });
  // An unchanged variant reruns the last layer.
  return Math.min(index < 0 ? model.layers.length : index, model.layers.length - 1, reference.layers.length - 1);
}

function sameRecord(a: object, b: object): boolean {
  const entries = Object.entries(a);
  return (
    entries.length === Object.keys(b).length &&
    entries.every(([key, value]) => sameValue(value, (b as Record<string, unknown>)[key]))
  );
}

function sameValue(a: unknown, b: unknown): boolean {
  if (ArrayBuffer.isView(a) || Array.isArray(a)) {
    const [x, y] = [a as ArrayLike<unknown>, b as ArrayLike<unknown>];
    if (!(ArrayBuffer.isView(b) || Array.isArray(b)) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  return a === b;
}

function loadOne(model: QuantModel): Promise<Model> {
  return loadModel(writeModel(model), { threads: 1 });
}

/**
 * Each layer's time in ms, measured as `bench --profile` measures it but the fastest of `runs`
 * rather than the median: on a shared machine other work only ever adds time to a layer, and a
 * block's share of the time should not depend on which of its layers a neighbour slowed down.
 */
export function layerMs(model: QuantModel, runs: number): Promise<number[]> {
  return loaded(model, (runtime) => layerTimes(runtime, runs, (times) => Math.min(...times)));
}

/** The fastest whole-inference time of each model over `runs`, measured in turns so load changes hit them alike. */
export async function inferenceMs(models: QuantModel[], input: Uint8Array, runs: number): Promise<number[]> {
  const runtimes = await Promise.all(models.map(loadOne));
  try {
    const times = runtimes.map(() => [] as number[]);
    for (let run = 0; run <= runs; run++) {
      runtimes.forEach((runtime, i) => {
        const start = performance.now();
        runtime.run(input);
        if (run > 0) times[i].push(performance.now() - start);
      });
    }
    return times.map((t) => Math.min(...t));
  } finally {
    for (const runtime of runtimes) runtime.dispose();
  }
}

/** The share of photos where `answers` names the same class as `reference`. */
export function agreement(answers: Int32Array, reference: Int32Array): number {
  return answers.reduce((n, a, i) => n + (a === reference[i] ? 1 : 0), 0) / answers.length;
}

/** Top-1 accuracy over the labelled photos, or undefined when none is labelled. */
export function accuracy(answers: Int32Array, photos: StudyPhoto[]): number | undefined {
  const labelled = photos.flatMap((p, i) => (p.classIndex === undefined ? [] : [answers[i] === p.classIndex ? 1 : 0]));
  return labelled.length === 0 ? undefined : labelled.reduce((a: number, b) => a + b, 0) / labelled.length;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
