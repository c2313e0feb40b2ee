/**
 * teach(model, examples): a head taught from labelled photos or embeddings, to run with
 * model.withHead(head) or to save as a complete model file. A shrinkage linear discriminant
 * (discriminant.ts), or on request class-balanced logistic regression (regression.ts) or the nearest
 * class mean (mean.ts).
 */

import type { DecoderChoice } from '../image/decoders.ts';
import { type ImageSource, toRgbImage } from '../image/sources.ts';
import { photoView, type View } from '../image/views.ts';
import { checkAugment } from '../options/validate.ts';
import type { Model } from '../runtime/model.ts';
import { fitDiscriminant } from './discriminant.ts';
import { embeddingTensor } from './embedding.ts';
import { TeachError } from './errors.ts';
import { type FloatHead, type Head, quantizeHead } from './head.ts';
import { fitClassMeans } from './mean.ts';
import { type Examples, fitLogistic } from './regression.ts';

/** A photo (anything classify takes) or an embedding of it (model.embed), with its class. */
export type Example = { label: string } & ({ image: ImageSource } | { embedding: Float32Array });

export type HeadMethod = 'discriminant' | 'logistic' | 'mean';

export interface TeachOptions {
  /**
   * Shrinkage linear `discriminant` (default), `logistic` regression or nearest class `mean`: in
   * bench/teach.ts the three are alike at 1 photo a class, and the discriminant is best from 5.
   */
  method?: HeadMethod;
  /**
   * L2 strength of the `logistic` regression (default 0.01; bench/teach.ts measured 0.001 to 0.1,
   * and choosing it by inner cross-validation on the examples did worse than this default).
   */
  l2?: number;
  /** At most this many L-BFGS iterations of the regression (default 100; it converges in 10 to 30 on the sample). */
  iterations?: number;
  /**
   * Answer `unknown` for photos whose best probability falls below a threshold chosen from the
   * examples (the lowest few percent of what cross-validation gives the examples it classifies right).
   */
  unknown?: boolean;
  /**
   * Also learn from extra views of each photo (not of examples given as embeddings): `true` for
   * its horizontal flip and a tighter centre crop, or a list of them (`['flip']`). Each view costs
   * one more inference a photo; bench/teach.ts measures what it gains (README).
   */
  augment?: boolean | readonly View[];
  decoder?: DecoderChoice;
  /** Called after each example is embedded (with its views). */
  onProgress?: (embedded: number, total: number) => void;
}

const DEFAULTS = { l2: 0.01, iterations: 100 };
/** The share of correctly classified held-out examples that the unknown threshold may reject. */
const UNKNOWN_QUANTILE = 0.05;

/**
 * Labelled embeddings: classes in the order their labels first appear. `photo` is the example each
 * row was embedded from: a photo's views share it, and cross-validation keeps them in one fold.
 */
export interface LabelledSet extends Examples {
  labels: string[];
  photo: number[];
}

export async function teach(model: Model, examples: readonly Example[], options: TeachOptions = {}): Promise<Head> {
  return headFromSet(model, await embedExamples(model, examples, options), options);
}

/** teach's first half: every example's embedding, and those of its photo's views. */
export async function embedExamples(
  model: Model,
  examples: readonly Example[],
  options: Pick<TeachOptions, 'augment' | 'decoder' | 'onProgress'> = {},
): Promise<LabelledSet> {
  const views = checkAugment(options.augment);
  const { labels, y: labelOf, classes } = labelExamples(examples);
  const set: LabelledSet = { labels, classes, x: [], y: [], photo: [] };
  for (const [index, example] of examples.entries()) {
    const rows =
      'embedding' in example
        ? [checkedEmbedding(model, example.embedding, index)]
        : await embedViews(model, example.image, views, options.decoder);
    for (const row of rows) {
      set.x.push(row);
      set.y.push(labelOf[index]);
      set.photo.push(index);
    }
    options.onProgress?.(index + 1, examples.length);
  }
  return set;
}

/** teach's second half: the head for labelled embeddings. */
export function headFromSet(model: Model, set: LabelledSet, options: TeachOptions = {}): Head {
  const float = fitHead(set, options);
  const unknown = options.unknown ? unknownThreshold(set, options) : undefined;
  const embedding = model.header.tensors[embeddingTensor(model.header)];
  return quantizeHead(
    float,
    embedding,
    set.labels,
    unknown === undefined ? { base: model.baseId } : { base: model.baseId, unknown },
  );
}

/** The embeddings of a photo and of its extra views, decoded once, in the order photo, ...views. */
async function embedViews(
  model: Model,
  image: ImageSource,
  views: readonly View[],
  decoder?: DecoderChoice,
): Promise<Float32Array[]> {
  const rgb = await toRgbImage(image, { decoder });
  const rows = [await model.embed(rgb)];
  for (const view of views) rows.push(await model.embed(photoView(rgb, view)));
  return rows;
}

/** The classes of the examples; refuses fewer than two, and one label written two ways. */
export function labelExamples(examples: readonly { label: string }[]): {
  labels: string[];
  y: number[];
  classes: number;
} {
  const labels: string[] = [];
  const spelled = new Map<string, string>();
  const y = examples.map(({ label }, index) => {
    if (typeof label !== 'string' || label.trim() === '')
      throw new TeachError(`example ${index}: the label must be a non-empty string`);
    const key = label.normalize('NFC').trim().toLowerCase();
    const seen = spelled.get(key);
    if (seen !== undefined && seen !== label)
      throw new TeachError(
        `example ${index}: label ${JSON.stringify(label)} is used twice (also as ${JSON.stringify(seen)})`,
      );
    if (seen === undefined) {
      spelled.set(key, label);
      labels.push(label);
    }
    return labels.indexOf(label);
  });
  if (labels.length < 2)
    throw new TeachError(
      `a head needs at least two classes, the examples have ${labels.length}${labels.length ? ` (${JSON.stringify(labels[0])})` : ''}`,
    );
  return { labels, y, classes: labels.length };
}

function checkedEmbedding(model: Model, embedding: Float32Array, index: number): Float32Array {
  if (!(embedding instanceof Float32Array) || embedding.length !== model.embeddingSize) {
    const size = embedding instanceof Float32Array ? `${embedding.length} values` : 'not a Float32Array';
    throw new TeachError(`example ${index}: embedding of ${size}, the model's have ${model.embeddingSize}`);
  }
  if (!embedding.every(Number.isFinite))
    throw new TeachError(`example ${index}: the embedding holds a value that is not finite`);
  return embedding;
}

/** The float head for labelled embeddings, by the method the options choose. */
export function fitHead(set: Examples, options: TeachOptions = {}): FloatHead {
  if (options.method === 'mean') return fitClassMeans(set);
  if (options.method === 'logistic') return fitLogistic(set, { ...DEFAULTS, ...definedOnly(options) });
  return fitDiscriminant(set);
}

function definedOnly(options: TeachOptions): { l2?: number; iterations?: number } {
  return {
    ...(options.l2 === undefined ? {} : { l2: options.l2 }),
    ...(options.iterations === undefined ? {} : { iterations: options.iterations }),
  };
}

/** Logits of a float head for one embedding. */
export function floatLogits(head: FloatHead, e: Float32Array): Float64Array {
  const d = e.length;
  return head.bias.map((b, c) => {
    let s = b;
    for (let j = 0; j < d; j++) s += head.weight[c * d + j] * e[j];
    return s;
  });
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** The mean of per-class recall: a class's share of the score whatever its count of examples. */
export function balancedAccuracy(truth: number[], predicted: number[], classes: number): number {
  const hits = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  truth.forEach((c, i) => {
    counts[c]++;
    if (predicted[i] === c) hits[c]++;
  });
  const present = counts.map((n, c) => (n > 0 ? hits[c] / n : -1)).filter((r) => r >= 0);
  return present.reduce((s, r) => s + r, 0) / present.length;
}

/**
 * Held-out predictions: the rows of example `photo[i]` are in fold photo[i] mod `folds`
 * (deterministic; a photo's views go together, so none is tested on a head that saw its twin),
 * and are predicted by a head taught on the other folds. Returns each row's predicted class and
 * top probability.
 */
export function crossValidate(
  set: Examples & { photo: number[] },
  options: TeachOptions = {},
  folds = 5,
): { predicted: number[]; confidence: number[] } {
  const predicted = new Array<number>(set.x.length);
  const confidence = new Array<number>(set.x.length);
  const foldOf = set.photo.map((p) => p % folds);
  for (let fold = 0; fold < Math.min(folds, new Set(set.photo).size); fold++) {
    const train = set.x.map((_, i) => i).filter((i) => foldOf[i] !== fold);
    if (new Set(train.map((i) => set.y[i])).size < set.classes) continue; // a class missing from training: skip the fold
    const head = fitHead(
      { x: train.map((i) => set.x[i]), y: train.map((i) => set.y[i]), classes: set.classes },
      options,
    );
    set.x.forEach((e, i) => {
      if (foldOf[i] !== fold) return;
      const probabilities = softmax(floatLogits(head, e));
      predicted[i] = argmax(probabilities);
      confidence[i] = probabilities[predicted[i]];
    });
  }
  return { predicted, confidence };
}

function softmax(logits: Float64Array): Float64Array {
  const max = Math.max(...logits);
  const exp = logits.map((v) => Math.exp(v - max));
  const sum = exp.reduce((s, v) => s + v, 0);
  return exp.map((v) => v / sum);
}

/** The top probability below which only UNKNOWN_QUANTILE of the correctly classified held-out examples fall. */
function unknownThreshold(set: Examples & { photo: number[] }, options: TeachOptions): number {
  const { predicted, confidence } = crossValidate(set, options);
  const right = confidence.filter((p, i) => predicted[i] === set.y[i] && p !== undefined).sort((a, b) => a - b);
  if (right.length === 0)
    throw new TeachError('unknown: true needs examples that cross-validation classifies right; add more photos');
  const threshold = right[Math.floor(UNKNOWN_QUANTILE * right.length)];
  return Math.min(0.99, Math.max(1 / set.classes, threshold));
}
