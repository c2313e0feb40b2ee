/**
 * What a network answers on the study's photos, and how fast it runs: the model is written as a
 * `.rnw` and loaded by the runtime as any user would load it (1 thread), so the answers are the
 * bits a user gets and the times include every kernel as it really runs.
 */

import { layerTimes } from '../cli/profile.ts';
import { writeModel } from '../format/writer.ts';
import type { QuantModel } from '../model/types.ts';
import { loadModel, type Model } from '../runtime/model.ts';
import type { StudyPhoto } from './photos.ts';

async function loaded<T>(model: QuantModel, use: (loaded: Model) => T): Promise<T> {
  const runtime = await loadModel(writeModel(model), { threads: 1 });
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
  const runtimes = await Promise.all(models.map((m) => loadModel(writeModel(m), { threads: 1 })));
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
