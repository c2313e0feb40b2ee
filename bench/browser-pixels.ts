// Does Chromium decode photos to the same pixels as sharp (libjpeg-turbo, bit-exact with PIL)?
// Every photo in test/photos and the ImageNet sample is decoded three ways: by Chromium as the
// library does in browsers (createImageBitmap, no colour management, read back from an
// OffscreenCanvas: src/image/browser-decode.ts), by sharp and by jpeg-js in Node; then the default
// model classifies each decoding. Prints a Markdown table per set and format.
//
//   node --import tsx bench/browser-pixels.ts [--limit N]   (N ImageNet photos; default all 500)
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInteger } from '../src/cli/command.ts';
import type { RgbImage } from '../src/image/decode.ts';
import { decodeBytes } from '../src/image/decoders.ts';
import { loadModel, type Model } from '../src/runtime/model.ts';
import { imagenetFiles, REPO_PHOTOS } from '../test/helpers/photos.ts';
import { openBenchPage } from './browser-page.ts';

const ROOT = join(import.meta.dirname, '..');
const { values: flags } = parseArgs({ options: { limit: { type: 'string' } } });

interface Comparison {
  identical: boolean;
  maxDiff: number;
  /** Pixels with a channel that differs, of all pixels. */
  differing: number;
  pixels: number;
  sameTop1: boolean;
  sameLogits: boolean;
  maxLogitDiff: number;
}

interface PhotoResult {
  set: string;
  format: string;
  browser: Comparison;
  js: Comparison;
}

const repoPhotos = listPhotos(REPO_PHOTOS).map((file) => ({ set: 'test/photos', file }));
const sample = imagenetFiles()
  .slice(0, flags.limit === undefined ? undefined : positiveInteger(flags.limit, '--limit'))
  .map(({ file }) => ({ set: 'ImageNet sample', file }));
const photos = [...repoPhotos, ...sample];

const files: Record<string, string> = { '/browser.js': join(ROOT, 'dist', 'browser.js') };
photos.forEach(({ file }, i) => {
  files[`/photos/${i}`] = file;
});
const { page, close } = await openBenchPage(files);
const model = await loadModel(join(ROOT, 'weights', 'default.rnw'));
const results: PhotoResult[] = [];
for (const [i, { set, file }] of photos.entries()) {
  const bytes = readFileSync(file);
  const sharp = await decodeBytes(bytes, { decoder: 'sharp' });
  const js = await decodeBytes(bytes, { decoder: 'js' });
  const browser = await decodeInChromium(i);
  const reference = await model.classify(sharp);
  const format = bytes[0] === 0xff ? 'JPEG' : 'PNG';
  results.push({
    set,
    format,
    browser: await compare(model, reference.logits, sharp, browser, `${file}, Chromium`),
    js: await compare(model, reference.logits, sharp, js, `${file}, decoder 'js'`),
  });
  if ((i + 1) % 50 === 0) console.error(`bench: ${i + 1} of ${photos.length} photos`);
}
await close();
model.dispose();
console.log(report(results));

function listPhotos(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => ['.jpg', '.png'].includes(extname(name)))
    .sort()
    .map((name) => join(dir, name));
}

/** The browser decoder's RGB pixels of photo i, as the library gets them in a browser. */
async function decodeInChromium(i: number): Promise<RgbImage> {
  const { width, height, base64 } = await page.evaluate(async (url) => {
    const runtime = '/browser.js';
    const { decodeBytes } = await import(runtime);
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const image = await decodeBytes(bytes, { decoder: 'browser' });
    let text = '';
    for (let at = 0; at < image.data.length; at += 0x8000)
      text += String.fromCharCode(...image.data.subarray(at, at + 0x8000));
    return { width: image.width, height: image.height, base64: btoa(text) };
  }, `/photos/${i}`);
  return { width, height, data: new Uint8Array(Buffer.from(base64, 'base64')) };
}

async function compare(
  model: Model,
  logits: Float32Array,
  reference: RgbImage,
  image: RgbImage,
  what: string,
): Promise<Comparison> {
  if (image.width !== reference.width || image.height !== reference.height)
    throw new Error(`${what}: ${image.width}x${image.height}, sharp's ${reference.width}x${reference.height}`);
  let maxDiff = 0;
  let differing = 0;
  for (let p = 0; p < reference.data.length; p += 3) {
    let pixelDiff = 0;
    for (let c = p; c < p + 3; c++) pixelDiff = Math.max(pixelDiff, Math.abs(reference.data[c] - image.data[c]));
    if (pixelDiff > 0) differing++;
    maxDiff = Math.max(maxDiff, pixelDiff);
  }
  const other = differing === 0 ? logits : (await model.classify(image)).logits;
  let maxLogitDiff = 0;
  for (let k = 0; k < logits.length; k++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(logits[k] - other[k]));
  return {
    identical: differing === 0,
    maxDiff,
    differing,
    pixels: reference.data.length / 3,
    sameTop1: argmax(logits) === argmax(other),
    sameLogits: maxLogitDiff === 0,
    maxLogitDiff,
  };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let k = 1; k < values.length; k++) if (values[k] > values[best]) best = k;
  return best;
}

function report(all: PhotoResult[]): string {
  const lines = [
    '| photos | decoder vs sharp | photos with identical pixels | max abs diff | pixels that differ | same logits | same top-1 | max logit diff |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const groups = [...new Set(all.map((r) => `${r.set}, ${r.format}`))];
  for (const group of groups) {
    const rows = all.filter((r) => `${r.set}, ${r.format}` === group);
    for (const decoder of ['browser', 'js'] as const) {
      const c = rows.map((r) => r[decoder]);
      const count = (test: (x: Comparison) => boolean) => `${c.filter(test).length} of ${c.length}`;
      const differing = c.reduce((s, x) => s + x.differing, 0);
      const pixels = c.reduce((s, x) => s + x.pixels, 0);
      lines.push(
        `| ${group} | ${decoder === 'browser' ? 'Chromium' : 'JavaScript'} | ${count((x) => x.identical)} | ${Math.max(...c.map((x) => x.maxDiff))} | ${((100 * differing) / pixels).toFixed(2)}% | ${count((x) => x.sameLogits)} | ${count((x) => x.sameTop1)} | ${Math.max(...c.map((x) => x.maxLogitDiff)).toFixed(3)} |`,
      );
    }
  }
  return lines.join('\n');
}
