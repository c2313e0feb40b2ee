/**
 * Which decoder reads encoded bytes: sharp where it loads (Node with the optional dependency
 * installed: fast, and WebP, GIF, TIFF, AVIF too), else the pure-JavaScript one (decode.ts: JPEG and
 * PNG). Both give PIL's convert('RGB') pixels; JPEG decoders differ among themselves by a level or
 * so on some pixels (libjpeg-turbo is bit-exact with PIL, jpeg-js and browsers are not).
 */
import { ImageDecodeError } from '../errors.ts';
import { decodeImage, type RgbImage } from './decode.ts';
import { DEFAULT_MAX_PIXELS } from './header.ts';
import { decodeNative, loadSharp } from './native.ts';

/** `auto`: sharp if it loads, else JavaScript. */
export type DecoderChoice = 'auto' | 'sharp' | 'js';

export interface DecodeBytesOptions {
  decoder?: DecoderChoice;
  /** Refuse images with more pixels than this, before decoding (default 40 megapixels). */
  maxPixels?: number;
}

export async function decodeBytes(bytes: Uint8Array, options: DecodeBytesOptions = {}): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const choice = options.decoder ?? 'auto';
  const sharp = choice === 'js' ? null : await loadSharp();
  if (sharp) return decodeNative(sharp, bytes, maxPixels);
  if (choice === 'sharp')
    throw new ImageDecodeError('the sharp decoder was asked for, but sharp is not installed or does not load here');
  return decodeImage(bytes, { maxPixels });
}

/** Which decoder `auto` picks here. */
export async function activeDecoder(): Promise<'sharp' | 'js'> {
  return (await loadSharp()) ? 'sharp' : 'js';
}
