/**
 * Which decoder reads encoded bytes: sharp where it loads (Node with the optional dependency
 * installed: fast, and WebP, GIF, TIFF, AVIF too), else the browser's own (browser-decode.ts, in
 * browsers and their workers: fast, every format the browser reads), else the pure-JavaScript one
 * (decode.ts: JPEG and PNG). All give PIL's convert('RGB') pixels for PNG; for JPEG, libjpeg-turbo
 * (sharp) is bit-exact with PIL, jpeg-js and browsers differ by a level or so on some pixels.
 */
import { ImageDecodeError } from '../errors.ts';
import { browserCanDecode, decodeInBrowser } from './browser-decode.ts';
import { decodeImage, type RgbImage } from './decode.ts';
import { DEFAULT_MAX_PIXELS, sniffFormat } from './header.ts';
import { decodeNative, loadSharp } from './native.ts';
import { isOpaque, rawToRgb } from './raw.ts';

/** `auto`: sharp if it loads, else the browser's decoder if this is a browser, else JavaScript. */
export type DecoderChoice = 'auto' | 'sharp' | 'browser' | 'js';

export interface DecodeBytesOptions {
  decoder?: DecoderChoice;
  /** Refuse images with more pixels than this, before decoding (default 40 megapixels). */
  maxPixels?: number;
}

export async function decodeBytes(bytes: Uint8Array, options: DecodeBytesOptions = {}): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const choice = options.decoder ?? 'auto';
  const sharp = choice === 'auto' || choice === 'sharp' ? await loadSharp() : null;
  if (sharp) return decodeNative(sharp, bytes, maxPixels);
  if (choice === 'sharp')
    throw new ImageDecodeError('the sharp decoder was asked for, but sharp is not installed or does not load here');
  if (choice === 'browser' && !browserCanDecode())
    throw new ImageDecodeError(
      'the browser decoder was asked for, but createImageBitmap or a 2D canvas is missing here',
    );
  if (choice !== 'js' && browserCanDecode()) return decodeWithBrowser(bytes, maxPixels);
  return decodeImage(bytes, { maxPixels });
}

/**
 * A canvas keeps its pixels premultiplied, so where alpha is below 255 the colours come back
 * altered: a PNG with transparency is read again by the JavaScript decoder, which keeps PIL's.
 */
async function decodeWithBrowser(bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
  const rgba = await decodeInBrowser(bytes, maxPixels);
  if (!isOpaque(rgba.data) && sniffFormat(bytes) === 'PNG') return decodeImage(bytes, { maxPixels });
  return rawToRgb(rgba);
}

/** Which decoder `auto` picks here. */
export async function activeDecoder(): Promise<'sharp' | 'browser' | 'js'> {
  if (await loadSharp()) return 'sharp';
  return browserCanDecode() ? 'browser' : 'js';
}
