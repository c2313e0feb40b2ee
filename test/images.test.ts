// Odd and bad images through the public API, Model.classify, with each decoder (sharp and the
// JavaScript fallback): each gives a correct answer (the same logits as the equivalent plain RGB
// pixels) or a clear ImageDecodeError. Browser image sources are checked against stand-in DOM classes.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mulberry32 } from '../src/builder/random.ts';
import { ImageDecodeError } from '../src/errors.ts';
import { decodeImage } from '../src/image/decode.ts';
import { type DecoderChoice, decodeBytes } from '../src/image/decoders.ts';
import { withoutExifOrientation } from '../src/image/orientation.ts';
import { preprocessQuantized } from '../src/image/preprocess.ts';
import { resize } from '../src/image/resize.ts';
import { type ImageSource, toRgbImage } from '../src/image/sources.ts';
import { loadModel, type Model } from '../src/runtime/model.ts';
import { pngWithExifOrientation } from './helpers/exif.ts';
import { tinyModelFile } from './helpers/model-files.ts';
import { skipBecause } from './helpers/skip.ts';

const PHOTOS = join(import.meta.dirname, 'photos');
const photo = (name: string) => new Uint8Array(readFileSync(join(PHOTOS, name)));
const model: Model = await loadModel(tinyModelFile());
const sharp = (await import('sharp').catch(() => null))?.default;

/** Both decoders where sharp loads; the JavaScript one alone where it does not. */
const DECODERS: DecoderChoice[] = sharp ? ['sharp', 'js'] : ['js'];
if (!sharp) console.log('    sharp does not load here: only the JavaScript decoder is tested');

const logits = async (source: ImageSource, decoder?: DecoderChoice) =>
  (await model.classify(source, { decoder })).logits;

async function refused(source: unknown, message: RegExp, decoder?: DecoderChoice): Promise<void> {
  const error = await model.classify(source as ImageSource, { decoder }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.instance(error, ImageDecodeError, `${decoder ?? 'auto'}: ${String(error)}`);
  assert.match((error as Error).message, message, decoder);
}

/** A small RGB test picture with some structure. */
function pattern(width: number, height: number): Uint8Array {
  return Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + (i >> 5) * 11) & 255);
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  return a.reduce((sum, v, i) => sum + Math.abs(v - b[i]), 0) / a.length;
}

/** A WebP's RIFF header and nothing else. */
const RIFF_WEBP = Uint8Array.from(
  [...'RIFF']
    .map((c) => c.charCodeAt(0))
    .concat(
      [36, 0, 0, 0],
      [...'WEBPVP8 '].map((c) => c.charCodeAt(0)),
    ),
);

function toRgba(rgb: Uint8Array, alpha: (pixel: number) => number): Uint8Array {
  const rgba = new Uint8Array((rgb.length / 3) * 4);
  for (let p = 0; p < rgb.length / 3; p++) rgba.set([rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2], alpha(p)], 4 * p);
  return rgba;
}

test('a photo as a path, bytes, an ArrayBuffer or pixels: the same answer', async () => {
  const bytes = photo('chelsea.png');
  const expected = await logits(bytes);
  assert.equal(await logits(join(PHOTOS, 'chelsea.png')), expected);
  assert.equal(await logits(bytes.slice().buffer), expected);
  assert.equal(await logits(decodeImage(bytes)), expected);
  assert.is((await model.classify(bytes, { top: 3 })).top.length, 3);
  const missing = await model.classify(join(PHOTOS, 'missing.png')).catch((e: NodeJS.ErrnoException) => e.code);
  assert.is(missing, 'ENOENT');
});

test('raw frames are not decoded: an RGB frame reaches preprocessing as the same bytes, no copy', async () => {
  const frame = { data: pattern(64, 48), width: 64, height: 48 };
  assert.is((await toRgbImage(frame)).data.buffer, frame.data.buffer);
  // A frame whose pixels happen to spell a JPEG signature is still pixels.
  frame.data.set([0xff, 0xd8, 0xff]);
  assert.is((await model.classify(frame)).top.length, 5);
});

test('classify writes tensor 0 in place exactly as preprocessQuantized computes it, at random sizes', async () => {
  const random = mulberry32(99);
  for (let i = 0; i < 12; i++) {
    const width = 1 + Math.floor(random() * 700);
    const height = 1 + Math.floor(random() * 500);
    const frame = { data: pattern(width, height), width, height };
    const expected = model.run(preprocessQuantized(frame, model.header.preprocessing, model.header.tensors[0]));
    assert.equal(await logits(frame), expected, `${width}x${height}`);
  }
});

test('a raw frame over 40 megapixels is refused, as an encoded image would be', async () => {
  await refused(
    { data: new Uint8Array(3 * 40_001 * 1000), width: 40_001, height: 1000 },
    /40001x1000 .*over the limit of 40000000 pixels/,
  );
});

for (const decoder of DECODERS) {
  test(`${decoder}: truncated JPEG refused at every cut`, async () => {
    const bytes = photo('rocket.jpg');
    for (const length of [2, 3, 100, 600, bytes.length >> 1, bytes.length - 2])
      await refused(bytes.subarray(0, length), /truncated|corrupt/, decoder);
  });

  test(`${decoder}: 0x0 images are refused; a 1x1 image gives the answer its one pixel gives`, async () => {
    const header = photo('chelsea.png').slice(0, 33);
    new DataView(header.buffer).setUint32(16, 0);
    new DataView(header.buffer).setUint32(20, 0);
    await refused(header, /empty image \(0x0\)/, decoder);
    const pixel = Uint8Array.from([12, 200, 99]);
    const png = encodePng({ width: 1, height: 1, channels: 3, depth: 8, data: pixel });
    assert.equal(await logits(png, decoder), await logits({ data: pixel, width: 1, height: 1 }));
    const jpg = jpeg.encode({ width: 1, height: 1, data: Uint8Array.from([12, 200, 99, 255]) }, 100).data;
    assert.is((await model.classify(jpg, { decoder })).top.length, 5);
  });

  test(`${decoder}: a header announcing 50000x50000 is refused before decoding`, async () => {
    const header = photo('chelsea.png').slice(0, 33);
    new DataView(header.buffer).setUint32(16, 50000);
    new DataView(header.buffer).setUint32(20, 50000);
    // The file ends after its header: a decoder that had started would fail otherwise.
    await refused(header, /50000x50000 .*over the limit/, decoder);
  });

  test(`${decoder}: CMYK, grayscale and progressive JPEGs classify like their decoded pixels, close to their source`, async () => {
    // The variants are 96x64 JPEGs of chelsea.png: a wrong CMYK inversion or channel order would be off by ~100.
    const source = resize(decodeImage(photo('chelsea.png')), 96, 64).data;
    for (const name of ['variants/chelsea-cmyk.jpg', 'variants/chelsea-gray.jpg', 'variants/chelsea-progressive.jpg']) {
      const pixels = await decodeBytes(photo(name), { decoder });
      assert.equal(await logits(photo(name), decoder), await logits(pixels), name);
      if (name !== 'variants/chelsea-gray.jpg')
        assert.ok(meanAbsDiff(pixels.data, source) < 4, `${name}: mean |diff| ${meanAbsDiff(pixels.data, source)}`);
    }
    const gray = Uint8Array.from({ length: 20 * 10 }, (_, i) => (i * 13) & 255);
    const png = encodePng({ width: 20, height: 10, channels: 1, depth: 8, data: gray });
    const replicated = Uint8Array.from({ length: gray.length * 3 }, (_, i) => gray[Math.floor(i / 3)]);
    assert.equal(await logits(png, decoder), await logits({ data: replicated, width: 20, height: 10 }));
  });

  test(`${decoder}: alpha is dropped, not composited: RGBA PNG = RGBA pixels = RGB pixels`, async () => {
    const rgb = pattern(40, 30);
    const rgba = toRgba(rgb, (p) => (p * 7) & 255);
    const expected = await logits({ data: rgb, width: 40, height: 30 });
    assert.equal(
      await logits(encodePng({ width: 40, height: 30, channels: 4, depth: 8, data: rgba }), decoder),
      expected,
    );
    assert.equal(await logits({ data: rgba, width: 40, height: 30 }), expected);
    assert.equal(
      await logits({ data: new Uint8ClampedArray(rgba), width: 40, height: 30 }),
      expected,
      'ImageData-like',
    );
  });

  test(`${decoder}: 16-bit PNG classifies like the 8-bit PNG of its high bytes`, async () => {
    const rgb = pattern(16, 16);
    const deep = Uint16Array.from(rgb, (v, i) => (v << 8) | ((i * 91) & 255));
    const expected = await logits(encodePng({ width: 16, height: 16, channels: 3, depth: 8, data: rgb }), decoder);
    assert.equal(
      await logits(encodePng({ width: 16, height: 16, channels: 3, depth: 16, data: deep }), decoder),
      expected,
    );
  });

  test(`${decoder}: non-image bytes: a clear error`, async () => {
    await refused(new TextEncoder().encode('hello, world'), /unsupported/, decoder);
    await refused(new Uint8Array(0), /empty input/, decoder);
  });
}

/** A test that makes its images with sharp: skipped, and said so, where sharp does not load. */
function sharpTest(name: string, body: (make: NonNullable<typeof sharp>) => Promise<void>): void {
  if (sharp) test(name, () => body(sharp));
  else skipBecause(name, 'sharp does not load here, and it makes these images');
}

sharpTest('EXIF orientation is ignored, as PIL does: the same pixels, not rotated', async (sharp) => {
  const raw = { raw: { width: 40, height: 30, channels: 3 as const } };
  const plain = await sharp(pattern(40, 30), raw).jpeg({ quality: 95 }).toBuffer();
  const rotated = await sharp(pattern(40, 30), raw).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.is((await sharp(rotated).metadata()).orientation, 6);
  for (const decoder of DECODERS) {
    const image = await decodeBytes(rotated, { decoder });
    assert.equal([image.width, image.height], [40, 30], decoder);
    assert.equal(image.data, (await decodeBytes(plain, { decoder })).data, decoder);
  }
});

sharpTest(
  'withoutExifOrientation sets the tag back to 1 in a copy, JPEG (both byte orders) and PNG (eXIf, its CRC too); other bytes come back as they are',
  async (sharp) => {
    const raw = { raw: { width: 40, height: 30, channels: 3 as const } };
    const plain = await sharp(pattern(40, 30), raw).jpeg({ quality: 95 }).toBuffer();
    assert.is(withoutExifOrientation(plain), plain, 'no EXIF: the same bytes');
    for (const orientation of [3, 6, 8]) {
      const rotated = new Uint8Array(
        await sharp(pattern(40, 30), raw).jpeg({ quality: 95 }).withMetadata({ orientation }).toBuffer(),
      );
      const before = rotated.slice();
      const unrotated = withoutExifOrientation(rotated);
      assert.equal(rotated, before, 'the input is left alone');
      assert.is((await sharp(unrotated).metadata()).orientation, 1);
      assert.is(unrotated.length, rotated.length);
      assert.is(withoutExifOrientation(unrotated), unrotated, 'already 1: the same bytes');
    }
    // Big-endian TIFF ("MM"), as cameras write it: the same entry in the other byte order.
    const exif = Uint8Array.from([
      0xff, 0xd8, 0xff, 0xe1, 0, 34, 0x45, 0x78, 0x69, 0x66, 0, 0, 0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0,
      3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0xff, 0xd9,
    ]);
    const fixed = withoutExifOrientation(exif);
    assert.equal(Array.from(fixed.subarray(30, 32)), [0, 1]);
    const chelsea = photo('chelsea.png');
    assert.is(withoutExifOrientation(chelsea), chelsea, 'a PNG without eXIf: the same bytes');
    // A PNG's eXIf chunk: the tag set back and the chunk's CRC recomputed (the decoder checks it).
    const turned = pngWithExifOrientation(chelsea, 6);
    const unturned = withoutExifOrientation(turned);
    assert.is.not(unturned, turned);
    assert.is((await sharp(unturned).metadata()).orientation ?? 1, 1);
    assert.equal(
      (await decodeBytes(unturned, { decoder: 'js' })).data,
      (await decodeBytes(chelsea, { decoder: 'js' })).data,
    );
  },
);

test('WebP: decoded by sharp (lossless WebP = the PNG it was made from); a clear error from the JavaScript decoder', async () => {
  const webp = photo('chelsea.png');
  const lossless = sharp ? new Uint8Array(await sharp(webp).webp({ lossless: true }).toBuffer()) : RIFF_WEBP;
  if (sharp) {
    assert.equal(await logits(lossless), await logits(webp));
    // The pixel limit holds for formats whose header only sharp reads.
    const error = await decodeBytes(lossless, { maxPixels: 451 * 300 - 1 }).catch((e: unknown) => e);
    assert.instance(error, ImageDecodeError);
    assert.match((error as Error).message, /WEBP image is 451x300 .*over the limit of 135299 pixels/);
  }
  await refused(
    lossless,
    /WebP: only JPEG and PNG are supported by the JavaScript decoder.*\{ data, width, height \}/,
    'js',
  );
});

test('malformed frames and unknown objects: clear errors', async () => {
  await refused({ data: new Uint8Array(0), width: 0, height: 0 }, /0x0 pixels is empty/);
  await refused(
    { data: new Uint8Array(30), width: 50000, height: 50000 },
    /needs 7500000000 \(RGB\) or 10000000000 \(RGBA\) bytes, got 30/,
  );
  await refused({ data: new Uint8Array(10), width: 2, height: 2 }, /needs 12 \(RGB\) or 16 \(RGBA\) bytes, got 10/);
  await refused({ data: new Uint8Array(12), width: 2.5, height: 2 }, /empty or malformed/);
  await refused({ width: 2, height: 2 }, /cannot read an image from Object/);
  await refused(42, /cannot read an image from 42/);
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

async function withDom(classes: Record<string, unknown>, body: () => Promise<void>): Promise<void> {
  const scope = globalThis as Record<string, unknown>;
  Object.assign(scope, classes);
  try {
    await body();
  } finally {
    for (const name of Object.keys(classes)) delete scope[name];
  }
}

test('browser sources (ImageBitmap, VideoFrame, HTMLImageElement) are drawn on a canvas and read back', async () => {
  const rgb = pattern(24, 18);
  const rgba = toRgba(rgb, () => 255);
  const expected = await logits({ data: rgb, width: 24, height: 18 });
  const dom = {
    ImageBitmap: FakeImageBitmap,
    VideoFrame: FakeVideoFrame,
    HTMLImageElement: FakeImageElement,
    OffscreenCanvas: FakeOffscreenCanvas,
  };
  await withDom(dom, async () => {
    assert.equal(await logits(new FakeImageBitmap(24, 18, rgba) as unknown as ImageBitmap), expected);
    assert.equal(await logits(new FakeVideoFrame(24, 18, rgba) as unknown as VideoFrame), expected);
    assert.equal(await logits(new FakeImageElement(24, 18, rgba) as unknown as HTMLImageElement), expected);
    await refused(new FakeImageElement(0, 0, rgba), /has no pixels yet \(0x0\): wait until it has loaded/);
  });
  await withDom({ ImageBitmap: FakeImageBitmap }, () =>
    refused(new FakeImageBitmap(24, 18, rgba), /no 2D canvas is available/),
  );
  await refused(new FakeImageBitmap(24, 18, rgba), /cannot read an image from FakeImageBitmap/);
});

test.run();
