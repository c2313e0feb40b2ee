// The web app in Debian's Chromium (headless, driven by playwright-core), served by web/serve.ts
// on 127.0.0.1: the model streams with a moving progress bar, a photo and the (fake) camera are
// classified in the worker, threads on an isolated page and one thread without the headers, and
// the app opens and classifies offline once visited. Screenshots go to test/artifacts/.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode as encodePng } from 'fast-png';
import type { BrowserContext, Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { activeDecoder, decodeBytes } from '../src/image/decoders.ts';
import { loadModel } from '../src/runtime/model.ts';
import { type DemoServer, serveDemo } from '../web/serve.ts';
import { chromiumMissing, launchChromium } from './helpers/chromium.ts';
import { pngWithExifOrientation } from './helpers/exif.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CAT = join(ROOT, 'test', 'photos', 'chelsea.png');
const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat'];
const ARTIFACTS = join(ROOT, 'test', 'artifacts');
const work = mkdtempSync(join(tmpdir(), 'resnet-wasm-web-'));

const missing =
  chromiumMissing() ?? (!existsSync(join(ROOT, 'weights', 'default.rnw')) ? 'weights/default.rnw is missing' : null);
if (missing) console.log(`web.test.ts: skipped: ${missing}`);
const it = missing ? test.skip : test;

/** A Y4M clip of the cat photo for Chromium's fake camera, when Debian's ffmpeg is there. */
function fakeCameraClip(): string | null {
  const clip = join(work, 'chelsea.y4m');
  const r = spawnSync('ffmpeg', [
    '-v',
    'error',
    '-loop',
    '1',
    '-i',
    CAT,
    '-frames:v',
    '10',
    '-vf',
    'scale=450:300',
    '-pix_fmt',
    'yuv420p',
    clip,
  ]);
  return r.status === 0 ? clip : null;
}

let isolatedServer: DemoServer;
let plainServer: DemoServer;
let context: BrowserContext;
const clip = missing ? null : fakeCameraClip();
if (!missing && !clip)
  console.log(
    'web.test.ts: the camera tests skipped: no ffmpeg to make a Y4M clip for the fake camera (apt-get install ffmpeg)',
  );
const withCamera = clip ? it : test.skip;

test.before(async () => {
  if (missing) return;
  execFileSync(process.execPath, ['web/build.js'], { cwd: ROOT, stdio: 'ignore' });
  mkdirSync(ARTIFACTS, { recursive: true });
  isolatedServer = await serveDemo({ root: join(ROOT, 'build', 'web'), port: 0 });
  plainServer = await serveDemo({ root: join(ROOT, 'build', 'web'), port: 0, isolated: false });
  const args = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
  if (clip) args.push(`--use-file-for-fake-video-capture=${clip}`);
  context = await launchChromium({
    profile: mkdtempSync(join(work, 'profile-')),
    args,
    viewport: { width: 760, height: 640 },
    permissions: ['camera'],
  });
});

test.after(async () => {
  await context?.close();
  await isolatedServer?.close();
  await plainServer?.close();
});

/** Every value the progress bar takes, recorded in the page from its first moment. */
const RECORD_PROGRESS = () => {
  const values: number[] = [];
  (window as unknown as { progressValues: number[] }).progressValues = values;
  document.addEventListener('DOMContentLoaded', () => {
    const bar = document.getElementById('progress') as HTMLProgressElement;
    new MutationObserver(() => values.push(bar.value)).observe(bar, { attributes: true, attributeFilter: ['value'] });
  });
};

/**
 * The order in which the page receives the worker's answers ('result') and sets the photo's preview
 * ('preview'): the preview is decoded only once the answer is in (app.ts).
 */
const RECORD_PREVIEW_ORDER = () => {
  const order: string[] = [];
  (window as unknown as { previewOrder: string[] }).previewOrder = order;
  const PageWorker = window.Worker;
  window.Worker = class extends PageWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, options);
      // Registered before the page's onmessage, so it hears each answer first.
      this.addEventListener('message', ({ data }) => data.type === 'result' && order.push('result'));
    }
  };
  document.addEventListener('DOMContentLoaded', () => {
    const preview = document.getElementById('preview')!;
    new MutationObserver(() => order.push('preview')).observe(preview, { attributes: true, attributeFilter: ['src'] });
  });
};

async function open(url: string): Promise<Page> {
  const page = await context.newPage();
  await page.addInitScript(RECORD_PROGRESS);
  await page.addInitScript(RECORD_PREVIEW_ORDER);
  await page.goto(url);
  await reached(page, 'ready');
  return page;
}

/** Waits for body[data-state=state]; the app's own message if it reports an error instead. */
async function reached(page: Page, state: string): Promise<void> {
  await page.waitForSelector(`body[data-state="${state}"], body[data-state="error"]`, { timeout: 60_000 });
  const now = await page.getAttribute('body', 'data-state');
  assert.is(now, state, `the app reports: ${await page.textContent('#status')}`);
}

async function classifyPhoto(page: Page, photo: string): Promise<{ label: string; score: number }[]> {
  await page.evaluate(() => document.body.removeAttribute('data-state'));
  await page.setInputFiles('#file', photo);
  await reached(page, 'classified');
  return JSON.parse((await page.getAttribute('#results', 'data-top'))!);
}

let page: Page;

it('cross-origin isolated: the model streams with a moving progress bar and runs on worker threads', async () => {
  const start = performance.now();
  page = await open(isolatedServer.url);
  console.log(`  web: model ready ${((performance.now() - start) / 1000).toFixed(1)} s after the page was opened`);
  const values: number[] = await page.evaluate(
    () => (window as unknown as { progressValues: number[] }).progressValues,
  );
  assert.ok(values.length >= 10, `the bar moved ${values.length} times`);
  assert.ok(
    values.every((v, i) => i === 0 || v >= values[i - 1]),
    'the bar never goes back',
  );
  assert.ok(values[0] < 0.5 && values[values.length - 1] === 1, `from ${values[0]} to ${values[values.length - 1]}`);
  assert.is(await page.evaluate(() => crossOriginIsolated), true);
  assert.is(
    await page.getAttribute('#status', 'data-threads'),
    String(Math.min(4, await page.evaluate(() => navigator.hardwareConcurrency))),
  );
});

it('a chosen photo is classified in the worker: a cat, with the same logits as in Node', async () => {
  const top = await classifyPhoto(page, CAT);
  assert.ok(CAT_CLASSES.includes(top[0].label), `top-1 is ${top[0].label}`);
  assert.match((await page.textContent('#latency')) ?? '', /^\d+ ms on this device/);
  assert.equal(
    await page.evaluate(() => (window as unknown as { previewOrder: string[] }).previewOrder),
    ['result', 'preview'],
    'the photo is shown once its answer is in, not decoded while the worker classifies it',
  );
  await page.screenshot({ path: join(ARTIFACTS, 'web-photo.png') });
  const model = await loadModel(join(ROOT, 'weights', 'default.rnw'));
  const { logits } = await model.classify(readFileSync(CAT));
  assert.is(
    await page.getAttribute('#results', 'data-logits'),
    Buffer.from(logits.buffer).toString('base64'),
    'the same bits in Chromium as in Node',
  );
  model.dispose();
});

withCamera('the camera: frames of the fake capture are classified one after another', async () => {
  await page.evaluate(() => document.body.removeAttribute('data-state'));
  await page.click('#camera');
  await page.waitForSelector('#results[data-source="camera"]', { timeout: 60_000 });
  const top = JSON.parse((await page.getAttribute('#results', 'data-top'))!);
  assert.ok(CAT_CLASSES.includes(top[0].label), `top-1 of a camera frame is ${top[0].label}`);
  await page.screenshot({ path: join(ARTIFACTS, 'web-camera.png') });
  await page.click('#camera');
});

it('offline after the first visit: with the server gone, the app opens, loads the model from the cache, classifies', async () => {
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await isolatedServer.close();
  await page.reload();
  await reached(page, 'ready');
  const top = await classifyPhoto(page, CAT);
  assert.ok(CAT_CLASSES.includes(top[0].label), `top-1 offline is ${top[0].label}`);
  await page.screenshot({ path: join(ARTIFACTS, 'web-offline.png') });
  await page.close();
});

it('served without COOP/COEP: not isolated, one thread, still a cat', async () => {
  const plain = await open(plainServer.url);
  assert.is(await plain.evaluate(() => crossOriginIsolated), false);
  assert.is(await plain.getAttribute('#status', 'data-threads'), '1');
  const top = await classifyPhoto(plain, CAT);
  assert.ok(CAT_CLASSES.includes(top[0].label), `top-1 is ${top[0].label}`);
  await plain.screenshot({ path: join(ARTIFACTS, 'web-one-thread.png') });
  await plain.close();
});

/**
 * A page of its own that imports the library (dist/browser.js), the package's files laid out as
 * installed and served from disk by the route, on a loopback origin (a secure context, for
 * getUserMedia) with no service worker. loadModel() finds weights/default.rnw next to dist/.
 * `bytes` are served too, under their paths.
 */
async function libraryPage(bytes: Record<string, Uint8Array> = {}): Promise<Page> {
  const libraryPage = await context.newPage();
  const origin = 'http://127.0.0.1:59999';
  const files: Record<string, string> = {
    '/pkg/dist/browser.js': join(ROOT, 'dist', 'browser.js'),
    '/pkg/weights/default.rnw': join(ROOT, 'weights', 'default.rnw'),
  };
  await libraryPage.route(`${origin}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = files[path];
    if (bytes[path]) return route.fulfill({ contentType: 'application/octet-stream', body: Buffer.from(bytes[path]) });
    if (file === undefined)
      return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>resnet-wasm</title>' });
    return route.fulfill({
      contentType: file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream',
      body: readFileSync(file),
    });
  });
  await libraryPage.goto(origin);
  return libraryPage;
}

withCamera(
  "model.classifyStream(getUserMedia's stream) in a page, the packaged model from loadModel(): the fake camera's cat, frames and times increasing",
  async () => {
    const streamPage = await libraryPage();
    const results = await streamPage.evaluate(async () => {
      const runtime = '/pkg/dist/browser.js';
      const { loadModel } = await import(runtime);
      const model = await loadModel();
      const camera = await navigator.mediaDevices.getUserMedia({ video: true });
      const seen: { frame: number; t: number; dropped: number; label: string }[] = [];
      for await (const { frame, t, dropped, top } of model.classifyStream(camera, { top: 1 })) {
        seen.push({ frame, t, dropped, label: top[0].label });
        if (seen.length === 3) break;
      }
      camera.getTracks().forEach((track: MediaStreamTrack) => track.stop());
      model.dispose();
      return seen;
    });
    await streamPage.close();
    assert.is(results.length, 3);
    for (const r of results) assert.ok(CAT_CLASSES.includes(r.label), `frame ${r.frame}: ${r.label}`);
    for (let i = 1; i < results.length; i++) {
      assert.ok(
        results[i].frame > results[i - 1].frame && results[i].t > results[i - 1].t,
        `frames and times increase: ${JSON.stringify(results)}`,
      );
    }
  },
);

const sharpLoads = (await activeDecoder()) === 'sharp';
if (!missing && !sharpLoads)
  console.log("web.test.ts: the browser decoder's comparisons with sharp skipped: sharp does not load here");
const withSharp = sharpLoads ? it : test.skip;

withSharp(
  "classify in a page decodes with the browser by default: JPEGs give sharp's logits in Node (libjpeg-turbo both), decoder 'js' jpeg-js's, a truncated JPEG is refused",
  async () => {
    const photos = ['rocket.jpg', 'variants/chelsea-cmyk.jpg', 'variants/chelsea-progressive.jpg'];
    const bytes = Object.fromEntries(
      photos.map((name) => [`/${name}`, readFileSync(join(ROOT, 'test', 'photos', name))]),
    );
    const decoderPage = await libraryPage(bytes);
    const { answers: inBrowser, truncated } = await decoderPage.evaluate(async (paths) => {
      const runtime = '/pkg/dist/browser.js';
      const { loadModel } = await import(runtime);
      const model = await loadModel();
      const answers = [];
      for (const path of paths) {
        const photo = new Uint8Array(await (await fetch(path)).arrayBuffer());
        const auto = await model.classify(photo);
        const js = await model.classify(photo, { decoder: 'js' });
        answers.push({ auto: Array.from(auto.logits as Float32Array), js: Array.from(js.logits as Float32Array) });
      }
      const whole = new Uint8Array(await (await fetch(paths[0])).arrayBuffer());
      const truncated = await model.classify(whole.subarray(0, whole.length - 2)).catch((error: Error) => error);
      model.dispose();
      return { answers, truncated: `${truncated.name}: ${truncated.message}` };
    }, Object.keys(bytes));
    await decoderPage.close();
    const model = await loadModel(join(ROOT, 'weights', 'default.rnw'));
    for (const [i, photo] of Object.values(bytes).entries()) {
      const sharp = await model.classify(photo, { decoder: 'sharp' });
      const js = await model.classify(photo, { decoder: 'js' });
      assert.equal(Float32Array.from(inBrowser[i].auto), sharp.logits, `${photos[i]}: Chromium's pixels are sharp's`);
      assert.equal(Float32Array.from(inBrowser[i].js), js.logits, `${photos[i]}: jpeg-js in Chromium as in Node`);
    }
    model.dispose();
    assert.match(
      truncated,
      /^ImageDecodeError: corrupt or truncated JPEG data/,
      'a JPEG without its last 2 bytes is refused',
    );
  },
);

withSharp(
  "the browser decoder where a canvas or the browser would alter pixels (PNG transparency, 16 bits, EXIF orientation in JPEG, PNG and WebP): PIL's pixels, as Node's decoders",
  async () => {
    const size = 16;
    const ramp = (i: number, k: number) => (i * 37 + k * 91) % 256;
    const transparent = encodePng({
      width: size,
      height: size,
      channels: 4,
      data: Uint8Array.from({ length: size * size * 4 }, (_, i) => ramp(i >> 2, i & 3)),
    });
    const deep = encodePng({
      width: size,
      height: size,
      channels: 3,
      depth: 16,
      data: Uint16Array.from({ length: size * size * 3 }, (_, i) => (i * 2741) % 65536),
    });
    const [width, height] = [40, 30];
    const raw = { raw: { width, height, channels: 3 as const } };
    const pattern = Buffer.from(Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 53) % 256));
    const sharp = (await import('sharp')).default;
    const rotated = await sharp(pattern, raw).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const opaque = encodePng({ width, height, channels: 3, data: pattern });
    const turned = pngWithExifOrientation(opaque, 6);
    const turnedWebp = await sharp(pattern, raw).webp({ lossless: true }).withMetadata({ orientation: 8 }).toBuffer();
    const bytes = {
      '/transparent.png': transparent,
      '/deep.png': deep,
      '/rotated.jpg': rotated,
      '/turned.png': turned,
      '/turned.webp': turnedWebp,
    };
    const decoderPage = await libraryPage(bytes);
    const inBrowser = await decoderPage.evaluate(async (paths) => {
      const runtime = '/pkg/dist/browser.js';
      const { decodeBytes } = await import(runtime);
      const decoded = [];
      for (const path of paths) {
        const encoded = new Uint8Array(await (await fetch(path)).arrayBuffer());
        decoded.push(Array.from((await decodeBytes(encoded, { decoder: 'browser' })).data as Uint8Array));
      }
      return decoded;
    }, Object.keys(bytes));
    await decoderPage.close();
    for (const [i, [path, encoded]] of Object.entries(bytes).entries()) {
      const expected = await decodeBytes(encoded, { decoder: path.endsWith('.png') ? 'js' : 'sharp' });
      assert.equal(Uint8Array.from(inBrowser[i]), expected.data, path);
    }
  },
);

it('Teach mode: two classes taught from photos answer, and still do after a reload (kept in the Cache API)', async () => {
  const photo = (name: string) => join(ROOT, 'test', 'photos', name);
  const teachPage = await open(plainServer.url);
  const addExamples = async (label: string, photos: string[], total: number) => {
    await teachPage.fill('#class-name', label);
    await teachPage.setInputFiles('#teach-files', photos);
    await teachPage.waitForFunction(
      (n) =>
        JSON.parse(document.getElementById('classes')!.dataset.classes ?? '[]').reduce(
          (s: number, c: { count: number }) => s + c.count,
          0,
        ) === n,
      total,
      { timeout: 120_000 },
    );
  };
  await addExamples('cat', [CAT, photo('variants/chelsea-gray.jpg')], 2);
  await addExamples('not a cat', [photo('coffee.png'), photo('rocket.jpg')], 4);
  assert.is((await classifyPhoto(teachPage, photo('variants/chelsea-cmyk.jpg')))[0].label, 'cat');
  await teachPage.reload();
  await reached(teachPage, 'ready');
  await teachPage.waitForSelector('#classes[data-classes]', { timeout: 60_000 });
  assert.equal(JSON.parse((await teachPage.getAttribute('#classes', 'data-classes'))!), [
    { label: 'cat', count: 2 },
    { label: 'not a cat', count: 2 },
  ]);
  assert.is((await classifyPhoto(teachPage, photo('variants/chelsea-cmyk.jpg')))[0].label, 'cat');
  assert.is((await classifyPhoto(teachPage, photo('coffee.png')))[0].label, 'not a cat');
  await teachPage.screenshot({ path: join(ARTIFACTS, 'web-teach.png') });
  await teachPage.close();
});

test.run();
