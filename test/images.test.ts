// Odd and bad images through the public API, Model.classify: each gives a correct answer (the
// same logits as the equivalent plain RGB pixels) or a clear ImageDecodeError. Browser image
// sources are checked against stand-in DOM classes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { loadModel, type Model } from '../src/runtime/model.ts';
import { ImageDecodeError } from '../src/errors.ts';
import type { ImageSource } from '../src/image/sources.ts';
import { decodeImage } from '../src/image/decode.ts';
import { tinyModelFile } from './helpers/model-files.ts';

const PHOTOS = join(import.meta.dirname, 'photos');
const photo = (name: string) => new Uint8Array(readFileSync(join(PHOTOS, name)));
const model: Model = await loadModel(tinyModelFile());

const logits = (source: ImageSource) => model.classify(source).logits;

function refused(source: unknown, message: RegExp): void {
  assert.throws(
    () => model.classify(source as ImageSource),
    (e: unknown) => e instanceof ImageDecodeError && message.test((e as Error).message),
  );
}

/** A small RGB test picture with some structure. */
function pattern(width: number, height: number): Uint8Array {
  return Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + (i >> 5) * 11) & 255);
}

function toRgba(rgb: Uint8Array, alpha: (pixel: number) => number): Uint8Array {
  const rgba = new Uint8Array((rgb.length / 3) * 4);
  for (let p = 0; p < rgb.length / 3; p++) rgba.set([rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2], alpha(p)], 4 * p);
  return rgba;
}

test('a photo as a path, bytes, an ArrayBuffer or pixels: the same answer', () => {
  const bytes = photo('chelsea.png');
  const expected = logits(bytes);
  assert.equal(logits(join(PHOTOS, 'chelsea.png')), expected);
  assert.equal(logits(bytes.slice().buffer), expected);
  assert.is(model.classify(bytes, { top: 3 }).top.length, 3);
  assert.throws(() => model.classify(join(PHOTOS, 'missing.png')), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
});

test('truncated JPEG: refused at every cut', () => {
  const bytes = photo('rocket.jpg');
  for (const length of [2, 3, 100, 600, bytes.length >> 1, bytes.length - 2]) refused(bytes.subarray(0, length), /truncated|corrupt/);
});

test('0x0 images are refused; a 1x1 image gives the answer its one pixel gives', () => {
  const header = photo('chelsea.png').slice(0, 33);
  new DataView(header.buffer).setUint32(16, 0);
  new DataView(header.buffer).setUint32(20, 0);
  refused(header, /empty image \(0x0\)/);
  refused({ data: new Uint8Array(0), width: 0, height: 0 }, /0x0 pixels is empty/);

  const pixel = Uint8Array.from([12, 200, 99]);
  const png = encodePng({ width: 1, height: 1, channels: 3, depth: 8, data: pixel });
  assert.equal(logits(png), logits({ data: pixel, width: 1, height: 1 }));
  const jpg = jpeg.encode({ width: 1, height: 1, data: Uint8Array.from([12, 200, 99, 255]) }, 100).data;
  assert.is(model.classify(jpg).top.length, 5);
});

test('a header announcing 50000x50000 is refused before decoding, at once', () => {
  const header = photo('chelsea.png').slice(0, 33);
  new DataView(header.buffer).setUint32(16, 50000);
  new DataView(header.buffer).setUint32(20, 50000);
  const start = performance.now();
  refused(header, /50000x50000 .*over the limit/);
  refused({ data: new Uint8Array(30), width: 50000, height: 50000 }, /needs 7500000000 \(RGB\) or 10000000000 \(RGBA\) bytes, got 30/);
  assert.ok(performance.now() - start < 50);
});

test('CMYK, grayscale and progressive JPEGs classify like their decoded RGB pixels', () => {
  for (const name of ['variants/chelsea-cmyk.jpg', 'variants/chelsea-gray.jpg', 'variants/chelsea-progressive.jpg']) {
    const result = model.classify(photo(name));
    assert.is(result.top.length, 5, name);
    assert.ok(result.logits.every(Number.isFinite), name);
    assert.equal(result.logits, logits(decodeImage(photo(name))), name);
  }
  const gray = Uint8Array.from({ length: 20 * 10 }, (_, i) => (i * 13) & 255);
  const png = encodePng({ width: 20, height: 10, channels: 1, depth: 8, data: gray });
  const replicated = Uint8Array.from({ length: gray.length * 3 }, (_, i) => gray[Math.floor(i / 3)]);
  assert.equal(logits(png), logits({ data: replicated, width: 20, height: 10 }));
});

test('alpha is dropped, not composited: RGBA PNG = RGBA pixels = RGB pixels', () => {
  const rgb = pattern(40, 30);
  const rgba = toRgba(rgb, (p) => (p * 7) & 255);
  const expected = logits({ data: rgb, width: 40, height: 30 });
  assert.equal(logits(encodePng({ width: 40, height: 30, channels: 4, depth: 8, data: rgba })), expected);
  assert.equal(logits({ data: rgba, width: 40, height: 30 }), expected);
  assert.equal(logits({ data: new Uint8ClampedArray(rgba), width: 40, height: 30 }), expected, 'ImageData-like');
});

test('16-bit PNG classifies like the 8-bit PNG of its high bytes', () => {
  const rgb = pattern(16, 16);
  const deep = Uint16Array.from(rgb, (v, i) => (v << 8) | ((i * 91) & 255));
  assert.equal(logits(encodePng({ width: 16, height: 16, channels: 3, depth: 16, data: deep })), logits(encodePng({ width: 16, height: 16, channels: 3, depth: 8, data: rgb })));
});

test('non-image bytes, WebP, malformed frames and unknown objects: clear errors', () => {
  refused(new TextEncoder().encode('hello, world'), /only JPEG and PNG are supported/);
  refused(new Uint8Array(0), /empty input/);
  const webp = Uint8Array.from([...'RIFF'].map((c) => c.charCodeAt(0)).concat([36, 0, 0, 0], [...'WEBPVP8 '].map((c) => c.charCodeAt(0))));
  refused(webp, /WebP is not supported here.*\{ data, width, height \}/);
  refused({ data: new Uint8Array(10), width: 2, height: 2 }, /needs 12 \(RGB\) or 16 \(RGBA\) bytes, got 10/);
  refused({ data: new Uint8Array(12), width: 2.5, height: 2 }, /empty or malformed/);
  refused({ width: 2, height: 2 }, /cannot read an image from Object/);
  refused(42, /cannot read an image from 42/);
});

// ---- browser sources, with stand-in DOM classes ----

/** Stand-ins for what a browser provides: a bitmap holding RGBA pixels, and a 2D canvas that draws it. */
class FakeImageBitmap {
  constructor(
    readonly width: number,
    readonly height: number,
    readonly rgba: Uint8Array,
  ) {}
}

class FakeVideoFrame {
  constructor(
    readonly displayWidth: number,
    readonly displayHeight: number,
    readonly rgba: Uint8Array,
  ) {}
}

class FakeImageElement {
  constructor(
    readonly naturalWidth: number,
    readonly naturalHeight: number,
    readonly rgba: Uint8Array,
  ) {}
}

class FakeOffscreenCanvas {
  private pixels = new Uint8ClampedArray(0);

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  getContext(kind: string) {
    assert.is(kind, '2d');
    return {
      drawImage: (source: { rgba: Uint8Array }, x: number, y: number) => {
        assert.equal([x, y], [0, 0]);
        this.pixels = new Uint8ClampedArray(source.rgba);
      },
      getImageData: (_x: number, _y: number, width: number, height: number) => ({ data: this.pixels, width, height }),
    };
  }
}

function withDom(classes: Record<string, unknown>, body: () => void): void {
  const scope = globalThis as Record<string, unknown>;
  Object.assign(scope, classes);
  try {
    body();
  } finally {
    for (const name of Object.keys(classes)) delete scope[name];
  }
}

test('browser sources (ImageBitmap, VideoFrame, HTMLImageElement) are drawn on a canvas and read back', () => {
  const rgb = pattern(24, 18);
  const rgba = toRgba(rgb, () => 255);
  const expected = logits({ data: rgb, width: 24, height: 18 });
  const dom = { ImageBitmap: FakeImageBitmap, VideoFrame: FakeVideoFrame, HTMLImageElement: FakeImageElement, OffscreenCanvas: FakeOffscreenCanvas };
  withDom(dom, () => {
    assert.equal(logits(new FakeImageBitmap(24, 18, rgba) as unknown as ImageBitmap), expected);
    assert.equal(logits(new FakeVideoFrame(24, 18, rgba) as unknown as VideoFrame), expected);
    assert.equal(logits(new FakeImageElement(24, 18, rgba) as unknown as HTMLImageElement), expected);
    refused(new FakeImageElement(0, 0, rgba), /has no pixels yet \(0x0\): wait until it has loaded/);
  });
  withDom({ ImageBitmap: FakeImageBitmap }, () => refused(new FakeImageBitmap(24, 18, rgba), /no 2D canvas is available/));
  refused(new FakeImageBitmap(24, 18, rgba), /cannot read an image from FakeImageBitmap/);
});

test.run();
