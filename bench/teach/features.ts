// Which features carry over to classes never taught? The default head (the shrinkage discriminant)
// on embeddings other than the final global average pool, scored like bench/teach.ts on 32 random
// 2-fold class splits (all photos, and 5 a group over 5 draws a split). Kept in history only: the
// final pool won (README, "Features"). `node --import tsx bench/teach/features.ts`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../../src/image/decode.ts';
import { quantizingMap, writeQuantized } from '../../src/image/preprocess.ts';
import { mirrored } from '../../src/image/views.ts';
import { residualBlocks } from '../../src/lesion/blocks.ts';
import { loadModel } from '../../src/runtime/model.ts';
import { fitHead } from '../../src/teach/teach.ts';
import { IMAGENET_DIR, imagenetFiles } from '../../test/helpers/photos.ts';
import { estimate, scores } from './transfer.ts';

const MODEL = 'weights/default.rnw';

const groupOf = new Map<number, string>();
for (const line of readFileSync(join(IMAGENET_DIR, '..', 'groups.tsv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)) {
  const [index, group] = line.split('\t');
  groupOf.set(Number(index), group);
}
const groups = [...new Set(groupOf.values())].sort();
const list = imagenetFiles().map((f) => ({ ...f, group: groups.indexOf(groupOf.get(f.classIndex)!) }));

type Pools = Record<string, Float32Array[]>;

/** Per photo: average pools of the stage-3 output, the last two blocks' outputs, max and GeM of the last. */
async function pools(): Promise<Pools> {
  const model = await loadModel(MODEL, { threads: 1 });
  const network = model.layers;
  const { header } = model;
  const inputMap = quantizingMap(header.preprocessing, header.tensors[0]);
  const blocks = residualBlocks(header);
  const last = blocks.at(-1)!;
  const stage3 = blocks.filter((b) => header.tensors[b.output].h === 2 * header.tensors[last.output].h).at(-1)!;
  const named: [string, number][] = [
    ['stage 3', stage3.output],
    ['block before last', blocks.at(-2)!.output],
    ['last block', last.output],
  ];
  const out: Pools = {};
  const add = (name: string, row: Float32Array) => {
    out[name] ??= [];
    out[name].push(row);
  };
  for (const { file } of list) {
    const photo = decodeImage(readFileSync(file));
    for (const [view, rgb] of [
      ['', photo],
      [' (flip)', mirrored(photo)],
    ] as const) {
      const write = (target: Parameters<Parameters<typeof network.runWrittenTo>[0]>[0]) =>
        writeQuantized(target, target.at, rgb, header.preprocessing, inputMap);
      for (const [name, id] of view ? named.slice(2) : named) {
        const { h, w, c, scale, zeroPoint } = header.tensors[id];
        const q = network.runWrittenTo(write, id);
        const [avg, max, cube] = [0, 1, 2].map(() => new Float32Array(c));
        for (let p = 0; p < h * w; p++)
          for (let k = 0; k < c; k++) {
            const v = scale * (q[p * c + k] - zeroPoint);
            avg[k] += v / (h * w);
            max[k] = Math.max(max[k], v);
            cube[k] += (v * v * v) / (h * w);
          }
        add(`${name} avg${view}`, avg);
        if (name === 'last block' && !view) {
          add('last block max', max);
          add('last block GeM 3', cube.map(Math.cbrt));
        }
      }
    }
    process.stderr.write(`\rpools: ${out['stage 3 avg'].length}/${list.length}`);
  }
  process.stderr.write('\n');
  model.dispose();
  return out;
}

/** Blocks side by side, each scaled to a mean length of `weight` over the photos. */
function joined(...blocks: [Float32Array[], number][]): Float32Array[] {
  const scaled = blocks.map(([rows, weight]) => {
    const length = rows.reduce((s, r) => s + Math.hypot(...r), 0) / rows.length;
    return rows.map((r) => r.map((v) => (v * weight) / length));
  });
  return list.map((_, i) => {
    const row = new Float32Array(scaled.reduce((s, b) => s + b[i].length, 0));
    let at = 0;
    for (const b of scaled) {
      row.set(b[i], at);
      at += b[i].length;
    }
    return row;
  });
}

const p = await pools();
const final = p['last block avg'];
const variants: [string, Float32Array[]][] = [
  ['final average pool (the embedding)', final],
  ['final max pool', p['last block max']],
  ['final GeM pool, p = 3', p['last block GeM 3']],
  ['final average ⊕ max pool', joined([final, 1], [p['last block max'], 1])],
  ['stage-3 ⊕ final average pool', joined([p['stage 3 avg'], 1], [final, 1])],
  ['stage-3 ×½ ⊕ final average pool', joined([p['stage 3 avg'], 0.5], [final, 1])],
  ['block-before-last ⊕ final average pool', joined([p['block before last avg'], 1], [final, 1])],
  [
    'photo and its flip averaged (test photos too)',
    final.map((r, i) => r.map((v, k) => (v + p['last block avg (flip)'][i][k]) / 2)),
  ],
];
const source = (x: Float32Array[]) => ({ x, y: list.map((l) => l.group), classes: groups.length });
const split = estimate(list, 2, 5, 32);
console.log('| features | all photos | 5 a group |\n|---|--:|--:|');
for (const [name, x] of variants) {
  const { all, few } = scores(source(x), (examples) => fitHead(examples), split, [5]);
  console.log(`| ${name} | ${(100 * all).toFixed(1)}% | ${(100 * few[0].mean).toFixed(1)}% |`);
}
