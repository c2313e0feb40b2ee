/**
 * Every kind of image a caller may hand to Model.classify, turned into 8-bit RGB pixels:
 * encoded files (a path in Node, or the bytes: decoders.ts), raw RGB or RGBA frames (raw.ts), and
 * in browsers anything a canvas can draw (canvas.ts).
 */
import { ImageDecodeError } from '../errors.ts';
import { type DrawableImage, describe, drawToPixels, isDrawable } from './canvas.ts';
import type { RgbImage } from './decode.ts';
import { type DecodeBytesOptions, decodeBytes } from './decoders.ts';
import { isRawImage, type RawImage, rawToRgb } from './raw.ts';

export type { DrawableImage } from './canvas.ts';
export type { RawImage } from './raw.ts';

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
