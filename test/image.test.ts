import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode as encodePng, type ImageData as PngImageData } from 'fast-png';
import jpeg from 'jpeg-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageDecodeError } from '../src/errors.ts';
import { decodeImage, type RgbImage } from '../src/image/decode.ts';
import { activeDecoder, decodeBytes } from '../src/image/decoders.ts';
import { inputLookupTable, preprocessFloat, preprocessQuantized } from '../src/image/preprocess.ts';
import { resampleScratchBytes, worstCaseScratchBytes } from '../src/image/resample.ts';
import {
  centerCrop,
  centerCropRect,
  resize,
  resizeAndCenterCrop,
  resizeCropWindow,
  resizeShorterSide,
  shorterSideSize,
} from '../src/image/resize.ts';
import type { Preprocessing, QuantParams } from '../src/model/types.ts';
import { imagenetFiles } from './helpers/photos.ts';
import { skipBecause } from './helpers/skip.ts';

const PHOTOS = join(dirname(fileURLToPath(import.meta.url)), 'photos');

function photoBytes(name: string): Uint8Array {
  return readFileSync(join(PHOTOS, name));
}

const photo = (name: string): RgbImage => decodeImage(photoBytes(name));

/** Deterministic bytes for synthetic images (an LCG: no dependency on other test helpers). */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

/** Noise with some smooth structure, so that resampling errors would show. */
function syntheticImage(width: number, height: number, seed: number): RgbImage {
  const noise = pseudoRandomBytes(width * height * 3, seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * width + x) * 3 + c;
        const wave = 127.5 + 100 * Math.sin((x * (c + 1)) / 7 + y / 11);
        data[i] = Math.max(0, Math.min(255, Math.round(wave + (noise[i] - 128) / 4)));
      }
    }
  }
  return { width, height, data };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'lengths differ');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'lengths differ');
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

function assertDecodeError(bytes: Uint8Array, pattern: RegExp, options?: { maxPixels?: number }): void {
  try {
    decodeImage(bytes, options);
  } catch (error) {
    assert.instance(error, ImageDecodeError);
    assert.match((error as Error).message, pattern);
    return;
  }
  assert.unreachable('decodeImage accepted bad input');
}

// ---- PIL, when this machine has it (Debian's python3-pil lives under /usr/bin/python3) ----

const PIL_PYTHON = ['python3', '/usr/bin/python3'].find(
  (python) => spawnSync(python, ['-c', 'import PIL'], { stdio: 'ignore' }).status === 0,
);

function pilTest(name: string, body: (python: string) => void): void {
  if (PIL_PYTHON) test(name, () => body(PIL_PYTHON));
  else skipBecause(name, 'no python3 with PIL (apt-get install python3-pil to run it)');
}

function runPython(python: string, script: string, args: string[], input?: Uint8Array): Uint8Array {
  const result = spawnSync(python, ['-c', script, ...args], { input, maxBuffer: 1 << 28 });
  if (result.status !== 0) throw new Error(`python failed: ${result.stderr}`);
  return new Uint8Array(result.stdout);
}

const PIL_RESIZE = `
import sys
from PIL import Image
w, h, ow, oh = map(int, sys.argv[1:5])
img = Image.frombytes('RGB', (w, h), sys.stdin.buffer.read())
sys.stdout.buffer.write(img.resize((ow, oh), Image.BILINEAR).tobytes())
`;

const PIL_DECODE = `
import sys
from PIL import Image
sys.stdout.buffer.write(Image.open(sys.stdin.buffer).convert('RGB').tobytes())
`;

// ---- decoding real photos ----

test('decodes the PNG photos at their known sizes', () => {
  const cat = photo('chelsea.png');
  assert.equal([cat.width, cat.height, cat.data.length], [451, 300, 451 * 300 * 3]);
  assert.equal([...cat.data.subarray(0, 3)], [143, 120, 104]);
  const coffee = photo('coffee.png');
  assert.equal([coffee.width, coffee.height, coffee.data.length], [600, 400, 600 * 400 * 3]);
});

test('decodes the JPEG photo and the JPEG variants (grayscale, CMYK, progressive)', () => {
  const rocket = photo('rocket.jpg');
  assert.equal([rocket.width, rocket.height, rocket.data.length], [640, 427, 640 * 427 * 3]);
  const cat = resize(photo('chelsea.png'), 96, 64);
  for (const name of ['chelsea-cmyk.jpg', 'chelsea-gray.jpg', 'chelsea-progressive.jpg']) {
    const img = photo(`variants/${name}`);
    assert.equal([img.width, img.height], [96, 64], name);
    if (name !== 'chelsea-gray.jpg') {
      // A wrong CMYK inversion or channel order would be off by ~100, not by JPEG noise.
      const error = meanAbsDiff(img.data, cat.data);
      assert.ok(error < 4, `${name}: mean |diff| from the PNG source ${error.toFixed(2)}`);
    }
  }
  const gray = photo('variants/chelsea-gray.jpg').data;
  for (let i = 0; i < gray.length; i += 3) {
    if (gray[i] !== gray[i + 1] || gray[i] !== gray[i + 2]) assert.unreachable(`gray pixel ${i / 3} not replicated`);
  }
});

pilTest('PNG decoding equals PIL convert("RGB") exactly; JPEG within a few levels', (python) => {
  for (const name of ['chelsea.png', 'coffee.png']) {
    assert.ok(maxAbsDiff(photo(name).data, runPython(python, PIL_DECODE, [], photoBytes(name))) === 0, name);
  }
  // jpeg-js's IDCT and chroma upsampling are not libjpeg's: small differences are expected.
  for (const name of ['rocket.jpg', 'variants/chelsea-cmyk.jpg', 'variants/chelsea-gray.jpg']) {
    const diff = maxAbsDiff(photo(name).data, runPython(python, PIL_DECODE, [], photoBytes(name)));
    assert.ok(diff <= 3, `${name}: max |diff| from PIL ${diff}`);
  }
  const progressive = 'variants/chelsea-progressive.jpg';
  const diff = meanAbsDiff(photo(progressive).data, runPython(python, PIL_DECODE, [], photoBytes(progressive)));
  assert.ok(diff < 1.5, `${progressive}: mean |diff| from PIL ${diff}`);
});

const sharpLoads = (await activeDecoder()) === 'sharp';

/** The sharp decoder's tests, skipped (and said so) where sharp does not load. */
function sharpPilTest(name: string, body: (python: string) => Promise<void>): void {
  if (sharpLoads && PIL_PYTHON) test(name, () => body(PIL_PYTHON));
  else skipBecause(name, 'needs sharp and python3 with PIL');
}

const sharpDecode = (bytes: Uint8Array) => decodeBytes(bytes, { decoder: 'sharp' });

sharpPilTest(
  'sharp decodes JPEG (baseline, progressive, grey, CMYK) and PNG exactly as PIL convert("RGB")',
  async (python) => {
    const names = [
      'rocket.jpg',
      'chelsea.png',
      'coffee.png',
      'variants/chelsea-cmyk.jpg',
      'variants/chelsea-gray.jpg',
      'variants/chelsea-progressive.jpg',
    ];
    // Every 40th ImageNet sample photo, where the sample is there: some carry ICC profiles or EXIF.
    const sample = imagenetFiles()
      .filter((_, i) => i % 40 === 0)
      .map((p) => p.file);
    const files = [...names.map((name) => join(PHOTOS, name)), ...sample];
    for (const file of files) {
      const bytes = new Uint8Array(readFileSync(file));
      assert.ok(maxAbsDiff((await sharpDecode(bytes)).data, runPython(python, PIL_DECODE, [], bytes)) === 0, file);
    }
    for (const { name, bytes, rgb } of syntheticPngs()) assert.equal([...(await sharpDecode(bytes)).data], rgb, name);
  },
);

sharpPilTest('sharp ignores embedded ICC profiles, as PIL does', async (python) => {
  const image = syntheticImage(48, 32, 11);
  const raw = { raw: { width: 48, height: 32, channels: 3 as const } };
  const { default: sharp } = await import('sharp');
  const tagged = new Uint8Array(await sharp(image.data, raw).withIccProfile('p3').png().toBuffer());
  assert.ok((await sharp(tagged).metadata()).hasProfile, 'the test file should carry a profile');
  // (withIccProfile converted the pixels to P3 when it wrote them: PIL's bytes are the oracle.)
  assert.equal((await sharpDecode(tagged)).data, runPython(python, PIL_DECODE, [], tagged));
});

test('accepts bytes that are a view into a larger buffer', () => {
  const bytes = photoBytes('chelsea.png');
  const padded = new Uint8Array(bytes.length + 13);
  padded.set(bytes, 13);
  assert.equal(decodeImage(padded.subarray(13)).data, photo('chelsea.png').data);
});

// ---- PNG colour types and bit depths ----

function png(image: PngImageData, options?: { interlace: 'Adam7' }): Uint8Array {
  return encodePng(image, options);
}

/** Packs one sample per pixel at `depth` bits, rows padded to whole bytes, as PNG does. */
function packBits(values: number[], width: number, depth: number): Uint8Array {
  const rows = values.length / width;
  const bytesPerRow = Math.ceil((width * depth) / 8);
  const out = new Uint8Array(rows * bytesPerRow);
  values.forEach((v, i) => {
    const bit = (i % width) * depth;
    out[Math.floor(i / width) * bytesPerRow + (bit >> 3)] |= v << (8 - depth - (bit & 7));
  });
  return out;
}

const lowDepthCases = [
  { depth: 1 as const, values: [0, 1, 1, 0, 1], scale: 255 },
  { depth: 2 as const, values: [0, 1, 2, 3, 2], scale: 85 },
  { depth: 4 as const, values: [0, 5, 15, 9, 1], scale: 17 },
];

/** Synthetic PNGs with the RGB that PIL's convert('RGB') gives them. */
function syntheticPngs(): { name: string; bytes: Uint8Array; rgb: number[] }[] {
  return [
    {
      name: '8-bit grayscale',
      bytes: png({ width: 3, height: 1, channels: 1, depth: 8, data: Uint8Array.from([0, 128, 255]) }),
      rgb: [0, 0, 0, 128, 128, 128, 255, 255, 255],
    },
    {
      name: 'gray + alpha (alpha dropped)',
      bytes: png({ width: 2, height: 1, channels: 2, depth: 8, data: Uint8Array.from([10, 0, 200, 255]) }),
      rgb: [10, 10, 10, 200, 200, 200],
    },
    {
      name: 'RGBA (alpha dropped, not composited)',
      bytes: png({
        width: 2,
        height: 1,
        channels: 4,
        depth: 8,
        data: Uint8Array.from([200, 100, 50, 0, 1, 2, 3, 128]),
      }),
      rgb: [200, 100, 50, 1, 2, 3],
    },
    {
      name: '16-bit RGB (high byte)',
      bytes: png({
        width: 2,
        height: 1,
        channels: 3,
        depth: 16,
        data: Uint16Array.from([0x1234, 0xffff, 0x00ff, 0x8000, 0x7fff, 0x0100]),
      }),
      rgb: [0x12, 0xff, 0x00, 0x80, 0x7f, 0x01],
    },
    {
      name: '16-bit RGBA (high byte, alpha dropped)',
      bytes: png({ width: 1, height: 1, channels: 4, depth: 16, data: Uint16Array.from([0xabcd, 0x0102, 0xff00, 0]) }),
      rgb: [0xab, 0x01, 0xff],
    },
    {
      name: 'palette, 8-bit indices',
      bytes: png({
        width: 3,
        height: 1,
        channels: 1,
        depth: 8,
        palette: [
          [255, 0, 0],
          [0, 255, 0],
          [0, 0, 255],
        ],
        data: Uint8Array.from([2, 0, 1]),
      }),
      rgb: [0, 0, 255, 255, 0, 0, 0, 255, 0],
    },
    {
      name: 'palette with transparency, 2-bit indices',
      bytes: png({
        width: 3,
        height: 2,
        channels: 1,
        depth: 2,
        palette: [
          [1, 2, 3, 0],
          [40, 50, 60, 128],
          [70, 80, 90, 255],
        ],
        data: packBits([2, 1, 0, 0, 2, 1], 3, 2),
      }),
      rgb: [70, 80, 90, 40, 50, 60, 1, 2, 3, 1, 2, 3, 70, 80, 90, 40, 50, 60],
    },
    ...lowDepthCases.map(({ depth, values, scale }) => ({
      name: `${depth}-bit grayscale (stretched x${scale})`,
      bytes: png({ width: 5, height: 1, channels: 1, depth, data: packBits(values, 5, depth) }),
      rgb: values.flatMap((v) => [v * scale, v * scale, v * scale]),
    })),
  ];
}

test('PNG colour types and bit depths become 8-bit RGB like PIL convert("RGB")', () => {
  for (const { name, bytes, rgb } of syntheticPngs()) assert.equal([...decodeImage(bytes).data], rgb, name);
});

pilTest('synthetic PNGs decode exactly as PIL does', (python) => {
  for (const { name, bytes, rgb } of syntheticPngs()) {
    assert.equal(
      [...runPython(python, PIL_DECODE, [], bytes)],
      rgb,
      `PIL disagrees with the test's expectation: ${name}`,
    );
  }
});

test('16-bit grayscale PNG keeps the high byte (PIL would clip to 255 instead)', () => {
  const bytes = png({ width: 2, height: 1, channels: 1, depth: 16, data: Uint16Array.from([0x3456, 0xfe01]) });
  assert.equal([...decodeImage(bytes).data], [0x34, 0x34, 0x34, 0xfe, 0xfe, 0xfe]);
});

test('an Adam7-interlaced PNG decodes to the same pixels', () => {
  const image = syntheticImage(37, 23, 5);
  const plain = png({ ...image, channels: 3, depth: 8 });
  const interlaced = png({ ...image, channels: 3, depth: 8 }, { interlace: 'Adam7' });
  assert.equal(decodeImage(interlaced).data, decodeImage(plain).data);
  assert.equal(decodeImage(plain).data, image.data);
});

test('a 1x1 PNG and a 1x1 JPEG decode', () => {
  const pixel = Uint8Array.from([12, 200, 99]);
  assert.equal([...decodeImage(png({ width: 1, height: 1, channels: 3, depth: 8, data: pixel })).data], [...pixel]);
  const jpg = jpeg.encode({ width: 1, height: 1, data: Uint8Array.from([12, 200, 99, 255]) }, 100).data;
  const decoded = decodeImage(jpg);
  assert.equal([decoded.width, decoded.height], [1, 1]);
  assert.ok(maxAbsDiff(decoded.data, pixel) <= 4, `1x1 JPEG decoded to ${[...decoded.data]}`);
});

// ---- refusals ----

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A PNG signature and IHDR chunk (with a dummy CRC) and nothing else. */
function pngHeader(width: number, height: number): Uint8Array {
  const bytes = new Uint8Array(33);
  const view = new DataView(bytes.buffer);
  bytes.set(PNG_SIGNATURE);
  view.setUint32(8, 13);
  bytes.set([0x49, 0x48, 0x44, 0x52], 12); // IHDR
  view.setUint32(16, width);
  view.setUint32(20, height);
  bytes.set([8, 2, 0, 0, 0], 24); // 8-bit RGB, deflate, adaptive filter, no interlace
  return bytes;
}

/** SOI, a JFIF APP0 segment and a baseline SOF0 frame header; no tables, no scan. */
function jpegHeader(width: number, height: number): Uint8Array {
  const app0 = [
    0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
  ];
  const sof0 = [0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03];
  const components = [0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01];
  return Uint8Array.from([0xff, 0xd8, ...app0, ...sof0, ...components]);
}

test('a PNG or JPEG header announcing 50000x50000 is refused before any decoding', () => {
  // The files stop after the header: a decoder would fail differently, and allocating 7.5 GB would not be quick.
  assertDecodeError(pngHeader(50000, 50000), /PNG image is 50000x50000 .*over the limit of 40000000 pixels/);
  assertDecodeError(jpegHeader(50000, 50000), /JPEG image is 50000x50000 .*over the limit of 40000000 pixels/);
});

test('maxPixels is the limit, inclusive', () => {
  const bytes = photoBytes('chelsea.png');
  assert.is(decodeImage(bytes, { maxPixels: 451 * 300 }).width, 451);
  assertDecodeError(bytes, /over the limit of 135299 pixels/, { maxPixels: 451 * 300 - 1 });
  assert.is(decodeImage(photoBytes('rocket.jpg'), { maxPixels: 640 * 427 }).width, 640);
  assertDecodeError(photoBytes('rocket.jpg'), /over the limit/, { maxPixels: 640 * 427 - 1 });
});

test('a header announcing 0 width or height is refused', () => {
  assertDecodeError(pngHeader(0, 0), /empty image \(0x0\)/);
  assertDecodeError(pngHeader(10, 0), /empty image \(10x0\)/);
  assertDecodeError(jpegHeader(0, 16), /empty image \(0x16\)/);
});

test('truncated JPEG files are refused', () => {
  const bytes = photoBytes('rocket.jpg');
  for (const length of [3, 20, 200, 600, bytes.length >> 1, bytes.length - 100, bytes.length - 2, bytes.length - 1]) {
    assertDecodeError(bytes.subarray(0, length), /truncated|corrupt/);
  }
});

test('truncated PNG files are refused', () => {
  const bytes = photoBytes('chelsea.png');
  assertDecodeError(bytes.subarray(0, 5), /truncated PNG/);
  for (const length of [10, 24, 40, 5000, bytes.length >> 1, bytes.length - 12, bytes.length - 1]) {
    assertDecodeError(bytes.subarray(0, length), /truncated|corrupt/);
  }
});

test('a PNG with a damaged byte fails its CRC and is refused', () => {
  const bytes = photoBytes('chelsea.png').slice();
  bytes[1000] ^= 0x40;
  assertDecodeError(bytes, /corrupt or truncated PNG/);
});

test('non-image bytes and empty input are refused, naming the supported formats', () => {
  assertDecodeError(new Uint8Array(0), /empty input: expected an encoded image \(JPEG, PNG/);
  assertDecodeError(
    new TextEncoder().encode('GIF89a\x01\x00\x01\x00'),
    /unsupported image format \(first bytes 47 49 46 38 39 61 01 00\): only JPEG and PNG/,
  );
  assertDecodeError(new TextEncoder().encode('hello, world'), /only JPEG and PNG are supported/);
  assertDecodeError(Uint8Array.from([0x42, 0x4d]), /only JPEG and PNG are supported/);
});

test("decoder 'browser' outside a browser is refused, saying what is missing; 'auto' here is not the browser's", async () => {
  const png = readFileSync(join(PHOTOS, 'coffee.png'));
  const error = await decodeBytes(png, { decoder: 'browser' }).catch((e: Error) => e);
  assert.instance(error, ImageDecodeError);
  assert.match(
    (error as Error).message,
    /the browser decoder was asked for, but createImageBitmap or a 2D canvas is missing here/,
  );
  assert.not.equal(await activeDecoder(), 'browser');
});

test('randomly damaged files decode or throw ImageDecodeError, never anything else', () => {
  const bases = [
    png({ ...syntheticImage(24, 16, 9), channels: 3, depth: 8 }),
    photoBytes('variants/chelsea-progressive.jpg'),
    photoBytes('variants/chelsea-cmyk.jpg'),
  ];
  const noise = pseudoRandomBytes(bases.length * 200 * 8, 77);
  let n = 0;
  for (const base of bases) {
    for (let trial = 0; trial < 200; trial++) {
      const bytes = base.slice();
      for (let k = 0; k < 4; k++) {
        const at = ((noise[n++] << 8) | noise[n++]) % bytes.length;
        bytes[at] = noise[n++];
      }
      n++;
      try {
        const img = decodeImage(bytes);
        assert.is(img.data.length, img.width * img.height * 3);
      } catch (error) {
        if (!(error instanceof ImageDecodeError))
          assert.unreachable(`raw ${(error as Error).name}: ${(error as Error).message}`);
      }
    }
  }
});

// ---- torchvision size and crop arithmetic ----

test('Resize(size) output size: shorter side = size, longer = int(size * long / short)', () => {
  assert.equal(shorterSideSize(500, 375, 256), { width: 341, height: 256 });
  assert.equal(shorterSideSize(375, 500, 256), { width: 256, height: 341 });
  assert.equal(shorterSideSize(1920, 1080, 256), { width: 455, height: 256 });
  assert.equal(shorterSideSize(300, 299, 256), { width: 256, height: 256 });
  assert.equal(shorterSideSize(256, 256, 224), { width: 224, height: 224 });
  assert.equal(shorterSideSize(451, 300, 256), { width: 384, height: 256 });
  assert.equal(shorterSideSize(1, 1000, 256), { width: 256, height: 256000 });
  const cat = resizeShorterSide(photo('chelsea.png'), 256);
  assert.equal([cat.width, cat.height, cat.data.length], [384, 256, 384 * 256 * 3]);
});

test('CenterCrop offsets: int(round((side - crop) / 2)) with half-to-even ties', () => {
  assert.equal(centerCropRect(341, 256, 224), { left: 58, top: 16, width: 224, height: 224 }); // 58.5 -> 58
  assert.equal(centerCropRect(343, 257, 224), { left: 60, top: 16, width: 224, height: 224 }); // 59.5 -> 60, 16.5 -> 16
  assert.equal(centerCropRect(455, 256, 224), { left: 116, top: 16, width: 224, height: 224 }); // 115.5 -> 116
  assert.equal(centerCropRect(224, 224, 224), { left: 0, top: 0, width: 224, height: 224 });
  // Crops larger than the image are zero-padded first, floor(excess / 2) before.
  assert.equal(centerCropRect(200, 101, 224), { left: -12, top: -61, width: 224, height: 224 });
});

test('centerCrop copies the window and zero-pads outside the image', () => {
  const img: RgbImage = { width: 5, height: 2, data: Uint8Array.from({ length: 30 }, (_, i) => i + 1) };
  const crop = centerCrop(img, 2); // offsets round(1.5) = 2, 0
  assert.equal([...crop.data], [7, 8, 9, 10, 11, 12, 22, 23, 24, 25, 26, 27]);
  const padded = centerCrop(img, 4); // left round(0.5) = 0, top -floor(2 / 2) = -1
  assert.equal(padded.data.subarray(0, 12), new Uint8Array(12));
  assert.equal([...padded.data.subarray(12, 24)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(padded.data.subarray(36, 48), new Uint8Array(12));
});

test('resizeAndCenterCrop equals centerCrop(resizeShorterSide(...)) bit for bit', () => {
  const images = [
    photo('chelsea.png'),
    photo('rocket.jpg'),
    syntheticImage(500, 375, 1),
    syntheticImage(123, 301, 2),
    syntheticImage(7, 3, 3),
  ];
  for (const img of images) {
    for (const [size, crop] of [
      [256, 224],
      [232, 224],
      [100, 99],
      [64, 80],
    ]) {
      const expected = centerCrop(resizeShorterSide(img, size), crop);
      assert.equal(resizeAndCenterCrop(img, size, crop), expected, `${img.width}x${img.height} ${size}/${crop}`);
    }
  }
});

// ---- resampling ----

/** Antialiased bilinear weights straight from the definition, over every source pixel. */
function floatWeights(inSize: number, outSize: number, o: number): Float64Array {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const center = (o + 0.5) * scale;
  const w = new Float64Array(inSize);
  let total = 0;
  for (let i = 0; i < inSize; i++) {
    w[i] = Math.max(0, 1 - Math.abs((i + 0.5 - center) / stretch));
    total += w[i];
  }
  return w.map((v) => v / total);
}

/** Separable float resize with no intermediate rounding, rounded once at the end. */
function floatResize(img: RgbImage, width: number, height: number): Uint8Array {
  const rows = new Float64Array(img.height * width * 3);
  for (let x = 0; x < width; x++) {
    const w = floatWeights(img.width, width, x);
    for (let y = 0; y < img.height; y++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let i = 0; i < img.width; i++) if (w[i] !== 0) sum += w[i] * img.data[(y * img.width + i) * 3 + c];
        rows[(y * width + x) * 3 + c] = sum;
      }
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const w = floatWeights(img.height, height, y);
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let j = 0; j < img.height; j++) if (w[j] !== 0) sum += w[j] * rows[(j * width + x) * 3 + c];
        out[(y * width + x) * 3 + c] = Math.round(sum);
      }
    }
  }
  return out;
}

const RESIZE_TARGETS = [
  [256, 170],
  [100, 37],
  [451, 200],
  [700, 500],
  [13, 999],
  [1, 1],
] as const;

test('resize matches a float antialiased-bilinear reference within 1', () => {
  const cat = photo('chelsea.png');
  for (const [width, height] of RESIZE_TARGETS) {
    const diff = maxAbsDiff(resize(cat, width, height).data, floatResize(cat, width, height));
    assert.ok(diff <= 1, `451x300 -> ${width}x${height}: max |diff| ${diff}`);
  }
  const tall = syntheticImage(31, 517, 4);
  assert.ok(maxAbsDiff(resize(tall, 17, 256).data, floatResize(tall, 17, 256)) <= 1, 'tall image');
});

test('resize to the same size is the identity', () => {
  const img = syntheticImage(40, 30, 6);
  assert.equal(resize(img, 40, 30).data, img.data);
  assert.equal(resizeShorterSide(img, 30).data, img.data);
});

pilTest('resize equals PIL Image.resize(BILINEAR) bit for bit', (python) => {
  const images = [photo('chelsea.png'), syntheticImage(1920, 1080, 7), syntheticImage(31, 517, 4)];
  for (const img of images) {
    const targets = [
      ...RESIZE_TARGETS,
      [shorterSideSize(img.width, img.height, 256).width, shorterSideSize(img.width, img.height, 256).height],
    ];
    for (const [width, height] of targets) {
      const expected = runPython(python, PIL_RESIZE, [img.width, img.height, width, height].map(String), img.data);
      assert.ok(
        maxAbsDiff(resize(img, width, height).data, expected) === 0,
        `${img.width}x${img.height} -> ${width}x${height}`,
      );
    }
  }
});

const PIL_RESIZE_CROP = `
import sys
from PIL import Image
w, h, ow, oh, crop = map(int, sys.argv[1:6])
img = Image.frombytes('RGB', (w, h), sys.stdin.buffer.read()).resize((ow, oh), Image.BILINEAR)
# torchvision's CenterCrop: zero padding first when the crop is larger, then int(round(...)).
left = -((crop - ow) // 2) if crop > ow else int(round((ow - crop) / 2.0))
top = -((crop - oh) // 2) if crop > oh else int(round((oh - crop) / 2.0))
sys.stdout.buffer.write(img.crop((left, top, left + crop, top + crop)).tobytes())
`;

pilTest('resizeAndCenterCrop equals PIL resize + torchvision CenterCrop at random sizes, bit for bit', (python) => {
  const random = pseudoRandomBytes(4 * 40, 2024);
  for (let i = 0; i < 40; i++) {
    const [a, b, c, d] = random.subarray(4 * i, 4 * i + 4);
    // Sizes from 1 to ~1500 (some far below the crop, some far above), crops up to a little past the resize.
    const width = 1 + (((a << 3) ^ (b >> 2)) % 1500);
    const height = 1 + (((b << 3) ^ (c >> 1)) % 1100);
    const size = 8 + (c % 250);
    const crop = Math.max(1, size - 40 + (d % 60));
    const img = syntheticImage(width, height, i);
    const out = shorterSideSize(width, height, size);
    const expected = runPython(
      python,
      PIL_RESIZE_CROP,
      [width, height, out.width, out.height, crop].map(String),
      img.data,
    );
    assert.ok(
      maxAbsDiff(resizeAndCenterCrop(img, size, crop).data, expected) === 0,
      `${width}x${height} resize ${size} crop ${crop}`,
    );
  }
});

test('the scratch bound covers every image up to the pixel limit: extreme shapes and resize sizes', () => {
  const maxPixels = 40_000_000;
  const random = pseudoRandomBytes(3 * 300, 31);
  for (let i = 0; i < 300; i++) {
    const size = [1, 2, 3, 32, 73, 256, 1000][i % 7];
    const crop = Math.max(1, size - (random[3 * i] % Math.max(size, 1)));
    // Long sides from square to 1-pixel-thin, at or just under the limit.
    const short = 1 + Math.floor(Math.sqrt(maxPixels) * (random[3 * i + 1] / 255) ** 3);
    const long = Math.max(short, Math.floor(maxPixels / short) - (random[3 * i + 2] % 3));
    for (const [width, height] of [
      [long, short],
      [short, long],
    ]) {
      const { out, rect } = resizeCropWindow({ width, height }, size, crop);
      const need = resampleScratchBytes({ width, height }, out, rect);
      assert.ok(need <= worstCaseScratchBytes(size, crop, maxPixels), `${width}x${height} resize ${size} crop ${crop}`);
    }
  }
  // Near-square images with resize 1 keep (almost) their whole side: the worst case of all.
  const { out, rect } = resizeCropWindow({ width: 6325, height: 6324 }, 1, 1);
  assert.ok(resampleScratchBytes({ width: 6325, height: 6324 }, out, rect) <= worstCaseScratchBytes(1, 1, maxPixels));
});

// ---- quantized and float network input ----

const IMAGENET: Preprocessing = {
  resize: 256,
  crop: 224,
  colorOrder: 'RGB',
  pixelScale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** Ties to even, written differently from the library's. */
function rne(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return fraction < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

function formula(pre: Preprocessing, quant: QuantParams, c: number, p: number): number {
  const v = (p * pre.pixelScale - pre.mean[c]) / pre.std[c];
  return Math.min(255, Math.max(0, rne(v / quant.scale) + quant.zeroPoint));
}

function expectedTable(pre: Preprocessing, quant: QuantParams): number[] {
  return Array.from({ length: 768 }, (_, i) => formula(pre, quant, Math.floor(i / 256), i % 256));
}

const plain = (over: Partial<Preprocessing>): Preprocessing => ({
  resize: 1,
  crop: 1,
  colorOrder: 'RGB',
  pixelScale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  ...over,
});

test('input lookup table follows the ARCHITECTURE.md formula for ImageNet parameters', () => {
  for (const quant of [
    { scale: 0.0186, zeroPoint: 114 },
    { scale: 0.017124754, zeroPoint: 120 },
    { scale: 0.03, zeroPoint: 0 },
  ]) {
    assert.equal([...inputLookupTable(IMAGENET, quant)], expectedTable(IMAGENET, quant), JSON.stringify(quant));
  }
});

test('input lookup table rounds ties to even, both signs', () => {
  const half = inputLookupTable(plain({}), { scale: 2, zeroPoint: 0 });
  assert.equal([...half.subarray(0, 8)], [0, 0, 1, 2, 2, 2, 3, 4]); // p/2: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
  const negative = inputLookupTable(plain({ mean: [255, 255, 255] }), { scale: 2, zeroPoint: 128 });
  // (p - 255) / 2 at p = 254, 253, 252, 251, 250: -0.5 -> 0, -1, -1.5 -> -2, -2, -2.5 -> -2
  assert.equal([...negative.subarray(250, 255)], [126, 126, 126, 127, 128]);
  assert.equal([...half], expectedTable(plain({}), { scale: 2, zeroPoint: 0 }));
});

test('input lookup table clamps to 0..255 and uses each channel its own mean and std', () => {
  const pre = plain({ mean: [100, 0, 0], std: [1, 1, 0.5] });
  const table = inputLookupTable(pre, { scale: 1, zeroPoint: 10 });
  assert.is(table[0 * 256 + 0], 0); // 0 - 100 + 10 < 0
  assert.is(table[0 * 256 + 89], 0);
  assert.is(table[0 * 256 + 90], 0);
  assert.is(table[0 * 256 + 91], 1);
  assert.is(table[1 * 256 + 245], 255);
  assert.is(table[1 * 256 + 250], 255); // 250 + 10 > 255
  assert.is(table[2 * 256 + 100], 210); // 100 / 0.5 + 10
  assert.is(table[2 * 256 + 200], 255);
  assert.equal([...table], expectedTable(pre, { scale: 1, zeroPoint: 10 }));
});

test('preprocessQuantized: resize, centre crop, table lookup, NHWC', () => {
  const cat = photo('chelsea.png');
  const quant = { scale: 0.0186, zeroPoint: 114 };
  const input = preprocessQuantized(cat, IMAGENET, quant);
  assert.is(input.length, 224 * 224 * 3);
  const crop = centerCrop(resizeShorterSide(cat, 256), 224).data;
  const table = inputLookupTable(IMAGENET, quant);
  for (let i = 0; i < crop.length; i++) {
    if (input[i] !== table[(i % 3) * 256 + crop[i]]) assert.unreachable(`input[${i}]`);
  }
});

test('BGR order: network channel 0 reads blue, with mean[0] and std[0]', () => {
  const solid: RgbImage = { width: 4, height: 4, data: new Uint8Array(48) };
  for (let i = 0; i < 48; i += 3) solid.data.set([10, 100, 200], i);
  const pre = plain({ resize: 2, crop: 2, colorOrder: 'BGR', mean: [5, 50, 0], std: [1, 2, 4] });
  const quant = { scale: 1, zeroPoint: 0 };
  const input = preprocessQuantized(solid, pre, quant);
  // B = 200: (200 - 5) / 1; G = 100: (100 - 50) / 2; R = 10: 10 / 4 = 2.5, a tie, to 2.
  assert.equal([...input], [195, 25, 2, 195, 25, 2, 195, 25, 2, 195, 25, 2]);
  const rgb = preprocessQuantized(solid, { ...pre, colorOrder: 'RGB' }, quant);
  assert.equal([...rgb.subarray(0, 3)], [5, 25, 50]);
});

test('preprocessFloat: the same crop, normalized, rounded to f32; BGR reorders', () => {
  const cat = photo('chelsea.png');
  for (const colorOrder of ['RGB', 'BGR'] as const) {
    const pre = { ...IMAGENET, colorOrder };
    const input = preprocessFloat(cat, pre);
    assert.is(input.length, 224 * 224 * 3);
    const crop = centerCrop(resizeShorterSide(cat, 256), 224).data;
    for (let i = 0; i < crop.length; i++) {
      const c = i % 3;
      const pixel = crop[i - c + (colorOrder === 'BGR' ? 2 - c : c)];
      const expected = Math.fround((pixel * pre.pixelScale - pre.mean[c]) / pre.std[c]);
      if (input[i] !== expected) assert.unreachable(`${colorOrder} input[${i}] = ${input[i]}, expected ${expected}`);
    }
  }
});

test.run();
