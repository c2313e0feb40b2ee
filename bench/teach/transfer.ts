// Transfer estimates for bench/teach.ts: a head is taught on some of every group's classes and
// tested on the others, so it is judged on classes it never saw. An estimate is a list of
// partitions of the sample's classes into folds; each fold is predicted by a head taught on the
// rest (all of it, or `shots` photos a group drawn from it), the predictions of all folds are
// pooled, and the score is their balanced accuracy (the mean of per-group recall). k folds teach on
// (k − 1) / k of the classes: k = 2 is the benchmark, larger k come closer to its hidden
// check (taught on every dev photo, tested on classes outside the sample).
import { mulberry32 } from '../../src/builder/random.ts';
import type { FloatHead } from '../../src/teach/head.ts';
import type { Examples } from '../../src/teach/regression.ts';
import { argmax, balancedAccuracy, floatLogits } from '../../src/teach/teach.ts';

export interface Labelled {
  classIndex: number;
  group: number;
}

export interface Estimate {
  name: string;
  /** Each partition: the photos of each fold. */
  partitions: number[][][];
  /** Random draws of the photos, for each partition, at a given count a group. */
  draws: number;
}

/**
 * Every group's classes dealt into k folds in turn, by class index, or in a random order from
 * `rng`: each fold holds about 1/k of every group.
 */
export function classFolds(list: readonly Labelled[], k: number, rng?: () => number): number[][] {
  const classesOf = new Map<number, number[]>();
  for (const { classIndex, group } of list) {
    const classes = classesOf.get(group) ?? [];
    if (!classes.includes(classIndex)) classes.push(classIndex);
    classesOf.set(group, classes);
  }
  const foldOf = new Map<number, number>();
  for (const classes of classesOf.values()) {
    classes.sort((a, b) => a - b);
    if (rng) shuffle(classes, rng);
    classes.forEach((c, position) => foldOf.set(c, position % k));
  }
  const folds = Array.from({ length: k }, (): number[] => []);
  list.forEach((p, i) => folds[foldOf.get(p.classIndex)!].push(i));
  return folds;
}

/** k-fold by class index (draws of the photos a partition), or `splits` random class partitions. */
export function estimate(list: readonly Labelled[], k: number, draws: number, splits?: number): Estimate {
  if (splits === undefined) return { name: `${k}-fold`, partitions: [classFolds(list, k)], draws };
  const partitions = Array.from({ length: splits }, (_, s) => classFolds(list, k, mulberry32(1000 + s)));
  return { name: `${splits} random ${k}-fold splits`, partitions, draws };
}

export type Fit = (examples: Examples) => FloatHead;

export interface Source {
  /** Every photo's embedding. */
  x: Float32Array[];
  /** Extra training rows of each photo (its augmentation views), never tested. */
  extra?: Float32Array[][];
  /** Each photo's group. */
  y: number[];
  classes: number;
}

/** Pooled balanced accuracy of one partition, heads taught on all of the other folds or `shots` a group. */
export function transfer(source: Source, fit: Fit, folds: number[][], shots?: number, seed = 1): number {
  const { x, y, classes, extra = [] } = source;
  const truth: number[] = [];
  const predicted: number[] = [];
  folds.forEach((test, f) => {
    const pool = folds.flatMap((fold, g) => (g === f ? [] : fold));
    const chosen = shots === undefined ? pool : drawShots(pool, y, classes, shots, mulberry32(seed * 100 + f));
    const rows = [x, ...extra].flatMap((rowsOf) => chosen.map((i) => ({ e: rowsOf[i], c: y[i] })));
    const head = fit({ x: rows.map((r) => r.e), y: rows.map((r) => r.c), classes });
    for (const i of test) {
      truth.push(y[i]);
      predicted.push(argmax(floatLogits(head, x[i])));
    }
  });
  return balancedAccuracy(truth, predicted, classes);
}

/** An estimate's score with all photos (mean over partitions) and at `shots` a group (mean and min over partitions × draws). */
export function scores(source: Source, fit: Fit, { partitions, draws }: Estimate, shots: readonly number[]) {
  const all = mean(partitions.map((folds) => transfer(source, fit, folds)));
  const few = shots.map((k) => {
    const values = partitions.flatMap((folds) =>
      Array.from({ length: draws }, (_, d) => transfer(source, fit, folds, k, d + 1)),
    );
    return { shots: k, mean: mean(values), min: Math.min(...values) };
  });
  return { all, few };
}

/** `shots` photos of each group drawn from `pool` (all of a group's if it has fewer). */
function drawShots(pool: number[], y: number[], classes: number, shots: number, rng: () => number): number[] {
  const chosen: number[] = [];
  for (let c = 0; c < classes; c++) {
    const members = pool.filter((i) => y[i] === c);
    chosen.push(...shuffle(members, rng).slice(0, shots));
  }
  return chosen;
}

/** Fisher–Yates in place, from the end. */
function shuffle<T>(items: T[], rng: () => number): T[] {
  for (let k = items.length - 1; k > 0; k--) {
    const j = Math.floor(rng() * (k + 1));
    [items[k], items[j]] = [items[j], items[k]];
  }
  return items;
}

function mean(values: number[]): number {
  return values.reduce((s, v) => s + v, 0) / values.length;
}
