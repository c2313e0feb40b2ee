/**
 * Every kind of image a caller may hand to Model.classify, turned into 8-bit RGB pixels:
 * encoded files (a path in Node, or the bytes), raw RGB or RGBA frames ({data, width, height},
 * which ImageData is too), and in browsers anything a canvas can draw (HTMLImageElement,
 * ImageBitmap, VideoFrame, HTMLVideoElement, HTMLCanvasElement, OffscreenCanvas). The DOM types
 * are only looked up at run time, so this module loads in Node.
 */
import { ImageDecodeError } from '../errors.ts';
import type { RgbImage } from './decode.ts';
import { type DecodeBytesOptions, decodeBytes } from './decoders.ts';
import { checkDimensions, DEFAULT_MAX_PIXELS } from './header.ts';

/** Pixels already decoded: `data` is RGB or RGBA, rows top to bottom, no row padding. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/**
 * What a canvas can draw, checked by feature detection. Typed from the DOM library where the
 * program has it: without it (a Node project) each is `never`, so the types need no DOM.
 */
export type DrawableImage =
  | DomInstance<'HTMLImageElement'>
  | DomInstance<'HTMLVideoElement'>
  | DomInstance<'HTMLCanvasElement'>
  | DomInstance<'ImageBitmap'>
  | DomInstance<'OffscreenCanvas'>
  | DomInstance<'VideoFrame'>;

/** The instances of the global class `Name` where the program's libraries declare it, else never. */
type DomInstance<Name extends string> = typeof globalThis extends Record<Name, { prototype: infer T }> ? T : never;

/** A file path (Node), encoded bytes (JPEG, PNG; WebP and more with sharp), raw pixels, or a browser image. */
export type ImageSource = string | Uint8Array | ArrayBuffer | RawImage | DrawableImage;

/**
 * Decodes or converts any ImageSource to RGB; throws ImageDecodeError for what it cannot read.
 * Raw frames are used as they are: no decoding, and no copy for RGB.
 */
export async function toRgbImage(source: ImageSource, options: DecodeBytesOptions = {}): Promise<RgbImage> {
  if (typeof source === 'string') return decodeBytes(await readPath(source), options);
  if (source instanceof ArrayBuffer) return decodeBytes(new Uint8Array(source), options);
  if (source instanceof Uint8Array) return decodeBytes(source, options);
  if (isRawImage(source)) return rawToRgb(source);
  if (isDrawable(source)) return rawToRgb(drawToPixels(source));
  throw new ImageDecodeError(`cannot read an image from ${describe(source)}`);
}

/** Node's fs, reached without a static import so that browser bundles never need it. */
async function readPath(path: string): Promise<Uint8Array> {
  const fs = globalThis.process?.getBuiltinModule?.('node:fs/promises') as
    | typeof import('node:fs/promises')
    | undefined;
  if (fs === undefined) {
    throw new ImageDecodeError(
      `cannot read "${path}": file paths are read in Node (20.16 or newer) only; pass the bytes or an image element`,
    );
  }
  return fs.readFile(path);
}

function isRawImage(source: object): source is RawImage {
  const s = source as Partial<RawImage>;
  return (
    (s.data instanceof Uint8Array || s.data instanceof Uint8ClampedArray) &&
    typeof s.width === 'number' &&
    typeof s.height === 'number'
  );
}

/**
 * RGB is returned as is (a view, no copy); RGBA loses its alpha, as PIL's convert('RGB') does.
 * Frames over 40 megapixels are refused, as encoded images are.
 */
function rawToRgb({ data, width, height }: RawImage): RgbImage {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new ImageDecodeError(`an image of ${width}x${height} pixels is empty or malformed`);
  }
  const pixels = width * height;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length !== 3 * pixels && bytes.length !== 4 * pixels) {
    throw new ImageDecodeError(
      `a ${width}x${height} frame needs ${3 * pixels} (RGB) or ${4 * pixels} (RGBA) bytes, got ${bytes.length}`,
    );
  }
  // The decoders' limit, which preprocessing's scratch memory is sized for.
  checkDimensions('RGB(A) frame', { width, height }, DEFAULT_MAX_PIXELS);
  if (bytes.length === 3 * pixels) return { width, height, data: bytes };
  const rgb = new Uint8Array(3 * pixels);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = bytes[j];
    rgb[i + 1] = bytes[j + 1];
    rgb[i + 2] = bytes[j + 2];
  }
  return { width, height, data: rgb };
}

/** The DOM classes that exist in this environment. */
function drawableClasses(): (abstract new (...args: never[]) => object)[] {
  const names = [
    'HTMLImageElement',
    'HTMLVideoElement',
    'HTMLCanvasElement',
    'ImageBitmap',
    'OffscreenCanvas',
    'VideoFrame',
  ];
  const scope = globalThis as unknown as Record<string, unknown>;
  return names
    .map((name) => scope[name])
    .filter((c): c is abstract new (...args: never[]) => object => typeof c === 'function');
}

function isDrawable(source: object): source is DrawableImage {
  return drawableClasses().some((c) => source instanceof c);
}

/** Intrinsic size: an <img> or <video> is drawn at its natural size, a VideoFrame at its display size. */
function drawableSize(source: DrawableImage): { width: number; height: number } {
  if ('naturalWidth' in source) return { width: source.naturalWidth, height: source.naturalHeight };
  if ('videoWidth' in source) return { width: source.videoWidth, height: source.videoHeight };
  if ('displayWidth' in source) return { width: source.displayWidth, height: source.displayHeight };
  return { width: source.width, height: source.height };
}

/** Draws the image on a canvas of its own size and reads the RGBA pixels back. */
function drawToPixels(source: DrawableImage): RawImage {
  const { width, height } = drawableSize(source);
  if (!(width > 0 && height > 0)) {
    throw new ImageDecodeError(
      `the ${describe(source)} has no pixels yet (${width}x${height}): wait until it has loaded`,
    );
  }
  const context = canvas2d(width, height);
  context.drawImage(source as CanvasImageSource, 0, 0);
  const { data } = context.getImageData(0, 0, width, height);
  return { data, width, height };
}

type Context2d = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

/** An OffscreenCanvas where there is one (workers too), else a detached <canvas>. */
function canvas2d(width: number, height: number): Context2d {
  const settings: CanvasRenderingContext2DSettings = { willReadFrequently: true };
  let context: Context2d | null = null;
  if (typeof OffscreenCanvas === 'function') context = new OffscreenCanvas(width, height).getContext('2d', settings);
  else if (typeof document === 'object') {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    context = canvas.getContext('2d', settings);
  }
  if (context === null) throw new ImageDecodeError('no 2D canvas is available here to read the image');
  return context;
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'object';
}
