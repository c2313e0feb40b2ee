// `npm run bench:teach`: how well a head taught on our embeddings recognises groups of ImageNet
// classes it never saw (issue 13's transfer benchmark), int8 embeddings against fp32 ones of the
// same network, and how fast teaching and embedding are. The sample's groups.tsv maps each class
// to one of 11 groups; within each group the classes are split in two halves (alternately, by
// class index); a head is taught on one half's photos and tested on the other's, then the halves
// swap. Balanced accuracy = the mean of per-group recall. Heads learn from embeddings only.
// Augmented rows (teach's `augment`) add the int8 embeddings of each training photo's flip and/or
// tighter crop to the training set; test photos are never augmented. TEACH_FP32=skip leaves out
// the fp32 rows (TF.js takes ~8 minutes for the 500 photos the first time; cached after).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../src/builder/random.ts';
import { VIEWS, type View } from '../src/image/views.ts';
import { loadModel } from '../src/runtime/model.ts';
import { argmax, balancedAccuracy, fitHead, floatLogits, type TeachOptions } from '../src/teach/teach.ts';
import { IMAGENET_DIR, imagenetFiles } from '../test/helpers/photos.ts';
import { fp32Embeddings, int8Embeddings, SOURCE } from './teach/embeddings.ts';

const MODEL = 'weights/default.rnw';
const SHOTS = [1, 5, 20];
const DRAWS = 20;

interface Photo {
  file: string;
  classIndex: number;
  group: number;
}

const photos = samplePhotos();
if (!photos) {
  console.log(`bench:teach: skipped, the ImageNet sample (with groups.tsv) is not at ${join(IMAGENET_DIR, '..')}`);
} else if (!existsSync(SOURCE) || !existsSync(MODEL)) {
  console.log('bench:teach: run `npm run build:model` first (it fetches the Keras ResNet-50 the fp32 reference reads)');
} else {
  await report(photos.list, photos.groups);
}

function samplePhotos(): { list: Photo[]; groups: string[] } | null {
  const groupsFile = join(IMAGENET_DIR, '..', 'groups.tsv');
  const files = imagenetFiles();
  if (files.length === 0 || !existsSync(groupsFile)) return null;
  const groupOf = new Map<number, string>();
  for (const line of readFileSync(groupsFile, 'utf8').trim().split('\n').slice(1)) {
    const [index, group] = line.split('\t');
    groupOf.set(Number(index), group);
  }
  const groups = [...new Set(groupOf.values())].sort();
  return { list: files.map((f) => ({ ...f, group: groups.indexOf(groupOf.get(f.classIndex)!) })), groups };
}

/** The two halves of every group's classes: alternate classes by index. */
function halves(list: Photo[]): [number[], number[]] {
  const a: number[] = [];
  const b: number[] = [];
  const seen = new Map<number, number>();
  list
    .map((p, i) => ({ p, i }))
    .sort((u, v) => u.p.classIndex - v.p.classIndex)
    .forEach(({ p, i }) => {
      const position = seen.get(p.group) ?? 0;
      seen.set(p.group, position + 1);
      (position % 2 === 0 ? a : b).push(i);
    });
  return [a, b];
}

async function report(list: Photo[], groups: string[]): Promise<void> {
  const files = list.map((p) => p.file);
  const model = await loadModel(MODEL);
  const int8 = await int8Embeddings(model, files, MODEL);
  const viewed = new Map<View, Float32Array[]>();
  for (const view of VIEWS) viewed.set(view, (await int8Embeddings(model, files, MODEL, view)).embeddings);
  const fp32 = process.env.TEACH_FP32 === 'skip' ? null : await fp32Embeddings(files);
  const y = list.map((p) => p.group);
  const folds = halves(list);
  const classes = groups.length;
  /** Balanced accuracy, training on the chosen photos' rows of x and of each extra view's embeddings. */
  const evaluate = (
    x: Float32Array[],
    options: TeachOptions,
    shots?: number,
    seed = 1,
    extra: Float32Array[][] = [],
  ) => {
    const scores = folds.map((train, f) => {
      const test = folds[1 - f];
      const chosen = shots === undefined ? train : drawShots(train, y, classes, shots, mulberry32(seed * 100 + f));
      const rows = [x, ...extra].flatMap((source) => chosen.map((i) => ({ e: source[i], c: y[i] })));
      const head = fitHead({ x: rows.map((r) => r.e), y: rows.map((r) => r.c), classes }, options);
      return balancedAccuracy(
        test.map((i) => y[i]),
        test.map((i) => argmax(floatLogits(head, x[i]))),
        classes,
      );
    });
    return (scores[0] + scores[1]) / 2;
  };
  const methods: [string, TeachOptions][] = (process.env.TEACH_METHODS ?? 'discriminant,logistic,mean')
    .split(',')
    .map((m) => [
      m,
      { method: m as TeachOptions['method'], ...(process.env.TEACH_L2 ? { l2: Number(process.env.TEACH_L2) } : {}) },
    ]);
  console.log(
    `\nTransfer to unseen classes of ${classes} groups, 2-fold over group halves (${folds[0].length} + ${folds[1].length} photos), balanced accuracy:\n`,
  );
  console.log(
    `| head | embeddings | augment | all photos | ${SHOTS.map((k) => `${k} a group (mean / min of ${DRAWS})`).join(' | ')} |`,
  );
  console.log(`|---|---|---|--:|${SHOTS.map(() => '--:').join('|')}|`);
  const row = (name: string, kind: string, x: Float32Array[], options: TeachOptions, views: readonly View[] = []) => {
    const extra = views.map((view) => viewed.get(view)!);
    const all = evaluate(x, options, undefined, 1, extra);
    const shots = SHOTS.map((k) => {
      const draws = Array.from({ length: DRAWS }, (_, d) => evaluate(x, options, k, d + 1, extra));
      return `${pct(draws.reduce((s, v) => s + v, 0) / DRAWS)} / ${pct(Math.min(...draws))}`;
    });
    console.log(`| ${name} | ${kind} | ${views.join(' + ') || 'none'} | ${pct(all)} | ${shots.join(' | ')} |`);
  };
  for (const [name, options] of methods) {
    row(name, 'int8', int8.embeddings, options);
    if (fp32) row(name, 'fp32', fp32.embeddings, options);
  }
  for (const views of [['flip'], ['crop'], VIEWS] as const) row('discriminant', 'int8', int8.embeddings, {}, views);
  const timed = folds[0].concat(folds[1]).slice(0, 500);
  for (const method of ['discriminant', 'logistic'] as const) {
    const start = performance.now();
    const cpu = process.cpuUsage();
    fitHead({ x: timed.map((i) => int8.embeddings[i]), y: timed.map((i) => y[i]), classes }, { method });
    console.log(
      `\nTeaching from ${timed.length} embeddings (${classes} classes, ${method}): ${(performance.now() - start).toFixed(0)} ms on one thread (${(process.cpuUsage(cpu).user / 1000).toFixed(0)} ms of CPU).`,
    );
  }
  console.log(
    `Photos embedded per second (int8, 1 thread, JavaScript JPEG decoding included): ${int8.perSecond?.toFixed(1)}.`,
  );
}

/** `shots` photos of each group drawn from `pool` (all of a group's if it has fewer). */
function drawShots(pool: number[], y: number[], classes: number, shots: number, rng: () => number): number[] {
  const chosen: number[] = [];
  for (let c = 0; c < classes; c++) {
    const members = pool.filter((i) => y[i] === c);
    for (let k = members.length - 1; k > 0; k--) {
      const j = Math.floor(rng() * (k + 1));
      [members[k], members[j]] = [members[j], members[k]];
    }
    chosen.push(...members.slice(0, shots));
  }
  return chosen;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}
