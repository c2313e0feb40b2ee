// Embeddings and taught heads (src/teach/) on the default ResNet-50 and test/photos/: embed against
// the scalar integer reference's pool tensor, head training against plain float implementations,
// withHead against the saved and reloaded file.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModelPath } from '../src/cli/paths.ts';
import { decodeModel } from '../src/format/reader.ts';
import { preprocessQuantized } from '../src/image/preprocess.ts';
import type { QuantModel } from '../src/model/types.ts';
import { OptionError } from '../src/options/validate.ts';
import { loadModel } from '../src/runtime/model.ts';
import { startServer } from '../src/serve/server.ts';
import { SHRINKAGE } from '../src/teach/discriminant.ts';
import { embeddingTensor } from '../src/teach/embedding.ts';
import { TeachError } from '../src/teach/errors.ts';
import type { FloatHead } from '../src/teach/head.ts';
import { fitLogistic } from '../src/teach/regression.ts';
import { balancedAccuracy, crossValidate, type Example, embedExamples, fitHead, teach } from '../src/teach/teach.ts';
import { tinyModelFile } from './helpers/model-files.ts';
import { REPO_PHOTOS, repoPhotos } from './helpers/photos.ts';
import { mulberry32 } from './helpers/random.ts';
import { runQuantReference } from './oracle/int8-reference.ts';

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
  const layers = [
    ...quant.layers.slice(0, -1),
    { ...fc, cout: n, weight, bias: new Int32Array(n), multiplier: new Float32Array(n).fill(1) },
  ];
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
  assert.ok(
    expected.some((v) => v > 0),
    'the pool tensor is not all zero',
  );
});

test('embed gives the same bits for a path, the encoded bytes and decoded pixels', async () => {
  const photo = photos[1];
  const fromPath = await model.embed(photo.file);
  assert.equal(await model.embed(readFileSync(photo.file)), fromPath);
  assert.equal(await model.embed(photo.image), fromPath);
});

/**
 * The oracle: the same objective (examples centred on the mean of the class means and scaled to unit
 * length, class-balanced cross-entropy, L2 on the weights, no bias) minimized by plain full-batch
 * gradient descent on all the features, written without the library's code.
 */
function plainLogistic(
  x: Float32Array[],
  y: number[],
  classes: number,
  l2: number,
  steps: number,
): (e: Float32Array) => number[] {
  const d = x[0].length;
  const count = Array.from({ length: classes }, (_, c) => y.filter((v) => v === c).length);
  const centre = Array.from({ length: d }, (_, j) => x.reduce((s, r, i) => s + r[j] / (classes * count[y[i]]), 0));
  const centred = x.map((r) => Array.from(r, (v, j) => v - centre[j]));
  const norms = centred.map((r) => Math.hypot(...r));
  const meanNorm = norms.reduce((s, v) => s + v, 0) / norms.length;
  const z = centred.map((r, i) => r.map((v) => v / norms[i]));
  const W = Array.from({ length: classes }, () => new Array<number>(d).fill(0));
  const probabilities = (zi: number[]) => {
    const logits = W.map((row) => row.reduce((s, w, j) => s + w * zi[j], 0));
    const max = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - max));
    const sum = e.reduce((s, v) => s + v, 0);
    return e.map((v) => v / sum);
  };
  for (let step = 0; step < steps; step++) {
    const gW = W.map((row) => row.map((w) => l2 * w));
    z.forEach((zi, i) => {
      const p = probabilities(zi);
      const weight = 1 / (classes * count[y[i]]);
      p.forEach((pc, c) => {
        const r = weight * (pc - (c === y[i] ? 1 : 0));
        zi.forEach((v, j) => (gW[c][j] += r * v));
      });
    });
    W.forEach((row, c) => row.forEach((_, j) => (row[j] -= 1 * gW[c][j])));
  }
  return (e) => W.map((row) => row.reduce((s, w, j) => s + (w * (e[j] - centre[j])) / meanNorm, 0));
}

/**
 * Three classes of random features, unbalanced on purpose: more examples than features, then fewer
 * (as 2048-value embeddings of a few photos).
 */
function unbalancedProblems(seed: number): { x: Float32Array[]; y: number[]; d: number }[] {
  const random = mulberry32(seed);
  return [
    [40, 6],
    [14, 30],
  ].map(([n, d]) => {
    const y = Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : i < (4 * n) / 5 ? 1 : 2));
    const x = y.map((c) => Float32Array.from({ length: d }, (_, j) => (j === c ? 1.5 : 0) + random() * 2 + (j % 7)));
    return { x, y, d };
  });
}

/** A float head's score of class c for embedding e. */
const headScore = (head: FloatHead, e: Float32Array, c: number) =>
  head.bias[c] + e.reduce((s, v, j) => s + head.weight[c * e.length + j] * v, 0);

test('teaching finds the minimum of the regression that plain gradient descent finds', () => {
  const classes = 3;
  for (const { x, y, d } of unbalancedProblems(13)) {
    const oracle = plainLogistic(x, y, classes, 0.05, 4000);
    const head = fitLogistic({ x, y, classes }, { l2: 0.05, iterations: 200 });
    for (const e of x)
      oracle(e).forEach((v, c) => {
        const got = headScore(head, e, c);
        assert.ok(Math.abs(got - v) < 1e-3, `${x.length} × ${d}, logit ${c}: ${got} against ${v}`);
      });
  }
});

/**
 * The oracle for the default head: the shrinkage discriminant on all the features (no span), with
 * the same centring and unit length, by Gauss-Jordan elimination, written without the library's code.
 * Its scores are up to the library's temperature, one positive factor.
 */
function plainDiscriminant(x: Float32Array[], y: number[], classes: number, shrinkage: number) {
  const d = x[0].length;
  const count = Array.from({ length: classes }, (_, c) => y.filter((v) => v === c).length);
  const centre = Array.from({ length: d }, (_, j) => x.reduce((s, r, i) => s + r[j] / (classes * count[y[i]]), 0));
  const z = x.map((r) => {
    const centred = Array.from(r, (v, j) => v - centre[j]);
    const norm = Math.hypot(...centred);
    return centred.map((v) => v / norm);
  });
  const means = Array.from({ length: classes }, (_, c) =>
    Array.from({ length: d }, (_, j) => z.reduce((s, r, i) => s + (y[i] === c ? r[j] / count[c] : 0), 0)),
  );
  const within = Array.from({ length: d }, (_, a) =>
    Array.from({ length: d }, (_, b) =>
      z.reduce((s, r, i) => s + ((r[a] - means[y[i]][a]) * (r[b] - means[y[i]][b])) / (classes * count[y[i]]), 0),
    ),
  );
  const nu = within.reduce((s, row, a) => s + row[a], 0) / d;
  const sigma = within.map((row, a) => row.map((v, b) => (1 - shrinkage) * v + (a === b ? shrinkage * nu : 0)));
  // Gauss-Jordan on [Σ | m_0 ... m_C-1].
  const m = sigma.map((row, a) => [...row, ...means.map((mean) => mean[a])]);
  for (let col = 0; col < d; col++) {
    const pivot = m[col][col];
    m[col] = m[col].map((v) => v / pivot);
    m.forEach((row, r) => {
      if (r === col) return;
      const f = row[col];
      m[r] = row.map((v, k) => v - f * m[col][k]);
    });
  }
  const weights = means.map((_, c) => m.map((row) => row[d + c]));
  return (e: Float32Array) => weights.map((w) => w.reduce((s, v, j) => s + v * (e[j] - centre[j]), 0));
}

test('the default head is the shrinkage discriminant that a plain float implementation finds', () => {
  const classes = 3;
  for (const { x, y, d } of unbalancedProblems(17)) {
    const oracle = plainDiscriminant(x, y, classes, SHRINKAGE);
    const head = fitHead({ x, y, classes });
    // One positive factor (the temperature) relates the two for every example and class.
    const factor = headScore(head, x[0], 0) / oracle(x[0])[0];
    assert.ok(factor > 0, `factor ${factor}`);
    for (const e of x)
      oracle(e).forEach((v, c) => {
        const got = headScore(head, e, c);
        assert.ok(
          Math.abs(got - factor * v) < 1e-6 * (1 + Math.abs(got)),
          `${x.length} × ${d}, score ${c}: ${got} against ${factor * v}`,
        );
      });
  }
});

const examples = (): Example[] => [
  ...['chelsea.png', 'variants/chelsea-gray.jpg', 'variants/chelsea-progressive.jpg'].map((f) => ({
    image: join(REPO_PHOTOS, f),
    label: 'cat',
  })),
  ...['coffee.png', 'rocket.jpg'].map((f) => ({ image: join(REPO_PHOTOS, f), label: 'not a cat' })),
];

test('a taught head answers its own classes, and runs the same from memory and from its saved file', async () => {
  const head = await teach(model, examples());
  assert.equal(head.labels, ['cat', 'not a cat']);
  const taught = model.withHead(head);
  assert.equal(taught.labels, ['cat', 'not a cat']);
  const file = taught.toFile();
  const reloaded = await loadModel(file);
  assert.equal(reloaded.labels, ['cat', 'not a cat']);
  for (const photo of [
    ...examples().map((e) => (e as { image: string }).image),
    join(REPO_PHOTOS, 'variants', 'chelsea-cmyk.jpg'),
  ]) {
    const inMemory = await taught.classify(photo);
    const saved = await reloaded.classify(photo);
    assert.equal(saved.logits, inMemory.logits, photo);
  }
  assert.is((await taught.classify(join(REPO_PHOTOS, 'variants', 'chelsea-cmyk.jpg'))).top[0].label, 'cat');
  assert.is((await taught.classify(join(REPO_PHOTOS, 'coffee.png'))).top[0].label, 'not a cat');
  // The base model still answers ImageNet's classes.
  assert.is(model.labels.length, 1000);
  reloaded.dispose();
});

test('the same photos give a byte-identical model file; embeddings teach the same head as photos', async () => {
  const first = model.withHead(await teach(model, examples())).toFile();
  const embedded = await Promise.all(
    examples().map(async (e) => ({ label: e.label, embedding: await model.embed((e as { image: string }).image) })),
  );
  const second = model.withHead(await teach(model, embedded)).toFile();
  assert.ok(Buffer.from(first).equals(Buffer.from(second)), 'two files from the same examples differ');
});

test('bad examples and a head for another network are TeachErrors', async () => {
  const cat = { image: join(REPO_PHOTOS, 'chelsea.png'), label: 'cat' };
  const refused = async (bad: Example[], message: RegExp) => {
    const error = await teach(model, bad).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(error, TeachError);
    assert.match((error as Error).message, message);
  };
  await refused([cat, { ...cat }], /at least two classes/);
  await refused(
    [cat, { embedding: new Float32Array(512), label: 'dog' }],
    /example 1: embedding of 512 values, the model's have 2048/,
  );
  await refused([cat, { ...cat, label: 'Cat ' }], /label "Cat " is used twice \(also as "cat"\)/);
  const head = await teach(model, examples());
  const other = await loadModel(tinyModelFile());
  assert.throws(
    () => other.withHead(head),
    (e: unknown) => e instanceof TeachError && /taught on base network/.test((e as Error).message),
  );
  other.dispose();
});

test('a taught model keeps its base id, so heads move between it and its base', async () => {
  const taught = await loadModel(model.withHead(await teach(model, examples())).toFile());
  assert.is(taught.baseId, model.baseId);
  assert.is(taught.header.head?.base, model.baseId);
  assert.is(taught.header.head?.unknown, undefined);
  assert.is((await taught.classify(join(REPO_PHOTOS, 'coffee.png'))).unknown, undefined);
  taught.dispose();
});

test('unknown: true stores a threshold from the examples, and classify says whether a photo falls below it', async () => {
  const head = await teach(model, examples(), { unknown: true });
  assert.ok(head.unknown !== undefined && head.unknown > 0 && head.unknown < 1, `threshold ${head.unknown}`);
  const saved = await loadModel(model.withHead(head).toFile());
  assert.is(saved.header.head?.unknown, head.unknown);
  const answer = await saved.classify(join(REPO_PHOTOS, 'coffee.png'));
  assert.is(answer.unknown, answer.top[0].score < head.unknown!);
  saved.dispose();
});

test('POST /v1/embed answers the embedding, and refuses what /v1/classify refuses', async () => {
  const server = await startServer({ modelPath: defaultModelPath(), workers: 1, port: 0 });
  try {
    const cat = readFileSync(join(REPO_PHOTOS, 'chelsea.png'));
    const post = (body: Uint8Array, type: string) =>
      fetch(`${server.url}/v1/embed`, {
        method: 'POST',
        body: new Uint8Array(body) as unknown as BodyInit,
        headers: { 'content-type': type },
      });
    const ok = await post(cat, 'image/png');
    assert.is(ok.status, 200);
    const answer = (await ok.json()) as { embedding: number[]; ms: number };
    assert.equal(Float32Array.from(answer.embedding), await model.embed(cat));
    const bad = await post(new TextEncoder().encode('not a photo'), 'image/jpeg');
    assert.is(bad.status, 422);
    assert.is((await bad.json()).error.kind, 'bad-image');
    const text = await post(new TextEncoder().encode('hello'), 'text/plain');
    assert.is(text.status, 415);
  } finally {
    await server.close();
  }
});

/** Pixels of a photo as sharp sees them after `edit` (sharp is the independent decoder here). */
async function sharpPixels(path: string, edit: (image: import('sharp').Sharp) => import('sharp').Sharp) {
  const sharp = (await import('sharp')).default;
  const { data, info } = await edit(sharp(path).removeAlpha()).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

test("augment's views are the embeddings of the photo mirrored and cropped by sharp", async () => {
  const chelsea = join(REPO_PHOTOS, 'chelsea.png');
  const set = await embedExamples(
    model,
    [
      { label: 'cat', image: chelsea },
      { label: 'not a cat', embedding: await model.embed(join(REPO_PHOTOS, 'coffee.png')) },
    ],
    { augment: true },
  );
  // The photo, its flip, its crop; an example given as an embedding gets no views.
  assert.equal(set.photo, [0, 0, 0, 1]);
  assert.equal(set.y, [0, 0, 0, 1]);
  assert.equal(set.x[0], await model.embed(chelsea));
  assert.equal(set.x[1], await model.embed(await sharpPixels(chelsea, (image) => image.flop())));
  const { width, height } = await sharpPixels(chelsea, (image) => image);
  const [w, h] = [Math.round(0.8 * width), Math.round(0.8 * height)];
  const window = { left: Math.round((width - w) / 2), top: Math.round((height - h) / 2), width: w, height: h };
  assert.equal(set.x[2], await model.embed(await sharpPixels(chelsea, (image) => image.extract(window))));
  const flipOnly = await embedExamples(model, [{ label: 'cat', image: chelsea }, ...examples().slice(3)], {
    augment: ['flip'],
  });
  assert.equal(flipOnly.photo, [0, 0, 1, 1, 2, 2]);
  assert.equal(flipOnly.x[1], set.x[1]);
});

test("cross-validation keeps a photo's views in its fold: twins in training would leak the label", () => {
  // Random embeddings with random labels, each photo with an identical twin row (a view): held out
  // with its twin, chance; held out while its twin trains, the regression recalls the label.
  const rng = mulberry32(13);
  const [photos, d, classes] = [40, 128, 4];
  const base = Array.from({ length: photos }, () => Float32Array.from({ length: d }, () => rng() - 0.5));
  const labels = base.map(() => Math.floor(rng() * classes));
  const rows = base.flatMap((e, p) => [
    { e, p },
    { e, p },
  ]);
  const score = (photo: number[]) => {
    const set = { x: rows.map((r) => r.e), y: rows.map((r) => labels[r.p]), classes, photo };
    return balancedAccuracy(set.y, crossValidate(set).predicted, classes);
  };
  const together = score(rows.map((r) => r.p));
  const apart = score(rows.map((_, i) => i));
  assert.ok(apart > 0.9, `the control should leak: ${apart}`);
  assert.ok(together < 0.6, `views were split across folds: ${together}`);
});

test('bad augment values are OptionErrors, before any photo is embedded', async () => {
  for (const augment of ['yes', 1, ['flop'], ['flip', 'flip'], null]) {
    // The photo does not exist: the option must be refused before it is read.
    const bad = [...examples(), { label: 'cat', image: '/nonexistent.jpg' }];
    const error = await teach(model, bad, { augment } as never).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(error, OptionError, JSON.stringify(augment));
    assert.is((error as OptionError).option, 'augment');
    assert.match(
      (error as Error).message,
      /^augment must be true, false or a list of distinct views \(flip, crop\), got /,
    );
  }
});

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'resnet-wasm.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

/** An ImageFolder in a fresh temporary folder: class name -> photos of test/photos. */
function imageFolder(classes: Record<string, string[]>, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-teach-'));
  for (const [label, files] of Object.entries(classes)) {
    mkdirSync(join(dir, label));
    for (const file of files) copyFileSync(join(REPO_PHOTOS, file), join(dir, label, basename(file)));
  }
  for (const [path, text] of Object.entries(extra)) writeFileSync(join(dir, path), text);
  return dir;
}

const CLASSES = { cat: ['chelsea.png', 'variants/chelsea-gray.jpg'], other: ['coffee.png', 'rocket.jpg'] };

test('resnet-wasm teach writes a model that classify runs, byte-identical from the same photos; embed prints JSON lines', () => {
  const dir = imageFolder(CLASSES, { 'other/notes.txt': 'not a photo' });
  const [first, second] = [join(dir, 'a.rnw'), join(dir, 'b.rnw')];
  const r = cli('teach', dir, '-o', first);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, 'cat: 2 photos\nother: 2 photos\n');
  assert.match(r.stdout, /cross-validated balanced accuracy/);
  assert.match(r.stderr, /skipped .*notes\.txt: not a photo/);
  assert.is(cli('teach', dir, '-o', second).status, 0);
  assert.ok(readFileSync(first).equals(readFileSync(second)), 'the same photos gave different files');
  const classify = cli('classify', '--json', '--model', first, join(REPO_PHOTOS, 'variants', 'chelsea-cmyk.jpg'));
  assert.is(JSON.parse(classify.stdout).top[0].label, 'cat', classify.stderr);
  const embed = cli('embed', '--json', join(REPO_PHOTOS, 'coffee.png'), join(REPO_PHOTOS, 'rocket.jpg'));
  const lines = embed.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.equal(
    lines.map((l) => [l.file.endsWith('coffee.png') || l.file.endsWith('rocket.jpg'), l.embedding.length]),
    [
      [true, 2048],
      [true, 2048],
    ],
  );
});

test('resnet-wasm teach --augment writes the file the library teaches with augment: true', async () => {
  const dir = imageFolder(CLASSES);
  const out = join(dir, 'augmented.rnw');
  const r = cli('teach', dir, '-o', out, '--augment');
  assert.is(r.status, 0, r.stderr);
  const library = await teach(
    model,
    Object.entries(CLASSES).flatMap(([label, files]) =>
      [...files].sort().map((f) => ({ label, image: join(dir, label, basename(f)) })),
    ),
    { augment: true },
  );
  assert.ok(Buffer.from(model.withHead(library).toFile()).equals(readFileSync(out)), 'CLI and library differ');
});

test('resnet-wasm teach refuses bad folders with one line and writes nothing', () => {
  const refused = (dir: string, message: RegExp, ...args: string[]) => {
    const out = join(dir, 'out.rnw');
    const r = cli('teach', dir, '-o', out, ...args);
    assert.is(r.status, 1, r.stdout);
    assert.match(r.stderr, message);
    assert.not.ok(existsSync(out), 'a file was written');
  };
  refused(imageFolder({ cat: ['chelsea.png'] }), /only one class folder \("cat"\)/);
  refused(imageFolder({ ...CLASSES, empty: [] }), /empty: no photos/);
  refused(imageFolder({ ...CLASSES, Cat: ['rocket.jpg'] }), /used twice/);
  refused(imageFolder(CLASSES, { 'cat/broken.jpg': 'not a jpeg' }), /broken\.jpg: .*nothing was written/);
  const existing = imageFolder(CLASSES, { 'out.rnw': 'keep me' });
  const r = cli('teach', existing, '-o', join(existing, 'out.rnw'));
  assert.is(r.status, 1);
  assert.match(r.stderr, /exists: pass --force/);
  assert.is(readFileSync(join(existing, 'out.rnw'), 'utf8'), 'keep me');
});

test.run();
